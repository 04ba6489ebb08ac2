"""How one measured quantity is declared: name, unit, description, expected direction of effect on
risk, and the reason text an underwriter reads.

It sits in the data layer because an insurer's mapping declares its own measurements in this
form, below the feature code that computes the built-in ones (features/registry.py gathers both).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DIRECTIONS = (-1, 0, 1)
# What a feature describes. `measurement`: the member's health or behaviour. `coverage`: how much
# data there is (days worn, consultations a year, history length). `testing_pattern`: when or how
# often a test was done. The last two describe the record, not the member, so they are never
# reasons (an applicant cannot change how often they were tested) and a monitor reads their drift as a change in data collection.
KINDS = ("measurement", "coverage", "testing_pattern")
AS_RECORDED = "as_recorded"  # fmt of a measurement whose precision the data set fixes (custom features)


def as_recorded(value: float) -> str:
    """A value at the precision it was recorded to, up to four decimals (0.627 stays 0.627, 21.5 stays 21.5)."""
    text = f"{value:,.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


@dataclass(frozen=True)
class FeatureSpec:
    """One feature. `direction` is the expected effect on risk (+1 raises, -1 lowers, 0 none
    assumed) and the default monotone constraint; `reason` is a plain-language template with
    `{value}` (already formatted with `fmt`, a format string at the unit's precision, or
    AS_RECORDED: as the data set recorded it) for underwriters."""

    name: str
    source: str
    unit: str
    description: str
    direction: int
    reason: str
    fmt: str = "{:,.1f}"
    kind: str = "measurement"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"feature {self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"feature {self.name}: direction must be -1, 0 or 1, got {self.direction}")
        if "{value}" not in self.reason:
            raise ValueError(f"feature {self.name}: reason text needs a {{value}} placeholder")

    def reason_text(self, value: float | None) -> str:
        """The reason in plain words, e.g. 'Average daily steps over the last 90 days: 3,200'."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            shown = "not recorded"
        else:
            shown = as_recorded(float(value)) if self.fmt == AS_RECORDED else self.fmt.format(value)
            if self.unit and self.unit not in ("flag", "count", "share", "points", "level", "score"):
                shown = f"{shown} {self.unit}"
        return self.reason.format(value=shown)

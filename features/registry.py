"""The feature registry: what each feature means, its unit, direction of effect and reason text.

Entries are data declared beside the function that computes them (each feature module's
`SPECS`); the registry gathers them. It is an object, not a global list, so a data set can add
its own features (an insurer's custom measurements) without touching the built-in ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

DIRECTIONS = (-1, 0, 1)
# What a feature describes. `measurement`: the member's health or behaviour. `coverage`: how much
# data there is (days worn, consultations a year, history length). `testing_pattern`: when or how
# often a test was done. The last two describe the record, not the member, so they are never
# reasons (design.md decision 12) and a monitor reads their drift as a change in data collection.
KINDS = ("measurement", "coverage", "testing_pattern")
# The definitions' version: raise it whenever a feature's computation changes, so a bundle trained
# with other definitions refuses to load instead of scoring new features with an old model.
FEATURE_DEFINITIONS_VERSION = 3  # 2: fixed windows and caps (issue 13); 3: history caps at one year


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


@dataclass
class FeatureRegistry:
    """Features by name, in the order they were registered."""

    specs: dict[str, FeatureSpec] = field(default_factory=dict)

    def add(self, spec: FeatureSpec) -> None:
        if spec.name in self.specs:
            raise ValueError(f"feature {spec.name} is already registered")
        self.specs[spec.name] = spec

    def extend(self, specs: Iterable[FeatureSpec]) -> FeatureRegistry:
        for spec in specs:
            self.add(spec)
        return self

    def __getitem__(self, name: str) -> FeatureSpec:
        try:
            return self.specs[name]
        except KeyError:
            raise KeyError(f"unknown feature {name!r}; the registry has {len(self.specs)} features") from None

    def __contains__(self, name: object) -> bool:
        return name in self.specs

    def __iter__(self) -> Iterator[FeatureSpec]:
        return iter(self.specs.values())

    def __len__(self) -> int:
        return len(self.specs)

    def names(self) -> list[str]:
        return list(self.specs)

    def directions(self) -> dict[str, int]:
        return {name: spec.direction for name, spec in self.specs.items()}

    def may_be_reason(self, name: str) -> bool:
        """Coverage and testing-pattern features describe the record, not the member: never a reason."""
        return self[name].kind == "measurement"


def default_registry() -> FeatureRegistry:
    """Every built-in feature, gathered from the modules that compute them."""
    from features.consultations import SPECS as consultation_specs
    from features.demographics import SPECS as demographic_specs
    from features.labs import SPECS as lab_specs
    from features.questionnaire import SPECS as questionnaire_specs
    from features.wearables import SPECS as wearable_specs

    registry = FeatureRegistry()
    for specs in (demographic_specs, questionnaire_specs, consultation_specs, lab_specs, wearable_specs):
        registry.extend(specs)
    return registry

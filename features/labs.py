"""Lab features from the long-format results: latest value, its age, and the trend where measured often.

Values arrive in canonical units (the contracts converted them), so one HbA1c in mmol/mol and
the next in % make one series. Values and trends read the last three years only, and "days
since" is capped there (3 years or more reads as 1,096), so no feature grows with the calendar
as histories lengthen (a model trained on old rows would else meet larger values in service);
never measured stays NaN, apart from long ago.
"""

from __future__ import annotations

import numpy as np

from chronorisk.data.declaration import FeatureSpec
from chronorisk.data.table import Table
from chronorisk.data.units import CANONICAL_UNIT
from features.pointintime import Pairs, distinct_days, join_before, last, minimum, slope_per_year

WINDOW_DAYS = 1096  # three years: the look-back of values and trends, and the cap of "days since"

# test -> (column prefix, plain name, direction of the level, keep a trend feature); the unit is the
# lab catalogue's canonical one (chronorisk/data/units.py), which every value is converted to first
_LEVELS: dict[str, tuple[str, str, int, bool]] = {
    "hba1c": ("hba1c_pct", "HbA1c", 1, True),
    "fasting_glucose": ("fasting_glucose_mmol_l", "Fasting glucose", 1, True),
    "ogtt_2h_glucose": ("ogtt_2h_glucose_mmol_l", "2-hour OGTT glucose", 1, True),
    "triglycerides": ("triglycerides_mmol_l", "Triglycerides", 1, False),
    "hdl": ("hdl_mmol_l", "HDL cholesterol", -1, False),
    "ldl": ("ldl_mmol_l", "LDL cholesterol", 0, False),
    "total_cholesterol": ("total_cholesterol_mmol_l", "Total cholesterol", 0, False),
    "egfr": ("egfr_ml_min", "eGFR (kidney function)", 0, True),
}
TESTS: dict[str, tuple[str, str, str, int, bool]] = {
    test: (prefix, CANONICAL_UNIT[test], plain, direction, trend)
    for test, (prefix, plain, direction, trend) in _LEVELS.items()}


def _specs() -> list[FeatureSpec]:
    specs = []
    for test, (prefix, unit, plain, direction, trend) in TESTS.items():
        fmt = "{:,.2f}" if unit == "mmol/L" else "{:,.1f}"
        specs.append(FeatureSpec(f"{prefix}_latest", "lab_results", unit, f"Latest {plain} result", direction,
                                 f"Latest {plain}: {{value}}", fmt=fmt))
        specs.append(FeatureSpec(f"{test}_days_since", "lab_results", "days",
                                 f"Days since the latest {plain} result (capped at {WINDOW_DAYS:,}: three years or "
                                 "more; missing: never measured)", 0,
                                 f"Days since the last {plain} test: {{value}}", fmt="{:,.0f}", kind="testing_pattern"))
        if trend:
            specs.append(FeatureSpec(f"{prefix}_per_year", "lab_results", f"{unit}/year",
                                     f"Trend of {plain} (least-squares slope over the last three years)",
                                     direction if direction > 0 else 0,
                                     f"{plain} trend per year: {{value}}", fmt="{:+,.2f}"))
    specs.append(FeatureSpec("lab_days_365d", "lab_results", "count", "Days with any lab result in the last year", 0,
                             "Days with lab tests in the last year: {value}", fmt="{:,.0f}", kind="testing_pattern"))
    return specs


SPECS = _specs()
NAMES = [s.name for s in SPECS]


def lab_features(labs: Table, pairs: Pairs) -> dict[str, np.ndarray]:
    j = join_before(labs, pairs, tiebreak=("test",))
    test = j.raw("test")
    value = j.col("value")
    out: dict[str, np.ndarray] = {}
    for name, (prefix, _, _, _, trend) in TESTS.items():
        mask = test == name
        one = j.where(mask)
        recent = one.days_before <= WINDOW_DAYS
        within = one.where(recent)
        out[f"{prefix}_latest"] = last(within, value[mask][recent])
        out[f"{name}_days_since"] = np.minimum(minimum(one, one.days_before.astype(float)), float(WINDOW_DAYS))
        if trend:
            out[f"{prefix}_per_year"] = slope_per_year(within, value[mask][recent])
    out["lab_days_365d"] = distinct_days(j.where(j.days_before <= 365))  # a count: no labs is 0, not unknown
    return out

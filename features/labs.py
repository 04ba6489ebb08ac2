"""Lab features from the long-format results: latest value, its age, and the trend where measured often.

Values arrive in canonical units (the contracts converted them), so one HbA1c in mmol/mol and
the next in % make one series.
"""

from __future__ import annotations

import pandas as pd

from features.pointintime import KEY, aligned, records_before, slope_per_year
from features.registry import FeatureSpec

# test -> (column prefix, unit, plain name, direction of the level, keep a trend feature)
TESTS: dict[str, tuple[str, str, str, int, bool]] = {
    "hba1c": ("hba1c_pct", "%", "HbA1c", 1, True),
    "fasting_glucose": ("fasting_glucose_mmol_l", "mmol/L", "Fasting glucose", 1, True),
    "triglycerides": ("triglycerides_mmol_l", "mmol/L", "Triglycerides", 1, False),
    "hdl": ("hdl_mmol_l", "mmol/L", "HDL cholesterol", -1, False),
    "ldl": ("ldl_mmol_l", "mmol/L", "LDL cholesterol", 0, False),
    "total_cholesterol": ("total_cholesterol_mmol_l", "mmol/L", "Total cholesterol", 0, False),
    "egfr": ("egfr_ml_min", "mL/min/1.73m2", "eGFR (kidney function)", 0, True),
}


def _specs() -> list[FeatureSpec]:
    specs = []
    for test, (prefix, unit, plain, direction, trend) in TESTS.items():
        fmt = "{:,.2f}" if unit == "mmol/L" else "{:,.1f}"
        specs.append(FeatureSpec(f"{prefix}_latest", "lab_results", unit, f"Latest {plain} result", direction,
                                 f"Latest {plain}: {{value}}", fmt=fmt))
        specs.append(FeatureSpec(f"{test}_days_since", "lab_results", "days", f"Days since the latest {plain} result",
                                 0, f"Days since the last {plain} test: {{value}}", fmt="{:,.0f}"))
        if trend:
            specs.append(FeatureSpec(f"{prefix}_per_year", "lab_results", f"{unit}/year",
                                     f"Trend of {plain} (least-squares slope over all results)",
                                     direction if direction > 0 else 0,
                                     f"{plain} trend per year: {{value}}", fmt="{:+,.2f}"))
    specs.append(FeatureSpec("lab_days_365d", "lab_results", "count", "Days with any lab result in the last year", 0,
                             "Days with lab tests in the last year: {value}", fmt="{:,.0f}"))
    return specs


SPECS = _specs()
NAMES = [s.name for s in SPECS]


def lab_features(labs: pd.DataFrame, index: pd.DataFrame) -> pd.DataFrame:
    recs = records_before(labs[["member_id", "date", "test", "value"]], index, tiebreak=("test",))
    parts = []
    for test, (prefix, _, _, _, trend) in TESTS.items():
        one = recs[recs["test"] == test]
        g = one.groupby(KEY, sort=False)
        part = pd.DataFrame({f"{prefix}_latest": g["value"].last(), f"{test}_days_since": g["days_before"].min()})
        if trend:
            part[f"{prefix}_per_year"] = slope_per_year(one, "value")
        parts.append(part)
    year = recs[recs["days_before"] <= 365]
    parts.append(year.groupby(KEY, sort=False)["date"].nunique().rename("lab_days_365d").to_frame())
    out = pd.concat(parts, axis=1) if parts else pd.DataFrame()
    features = aligned(out, index, NAMES)
    features["lab_days_365d"] = features["lab_days_365d"].fillna(0.0)  # a count: no labs is 0, not unknown
    return features

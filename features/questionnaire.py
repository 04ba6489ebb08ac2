"""Application questionnaire features (`q_*`): what the applicant said, as they said it.

Self-reported answers are kept apart from recorded measurements, so the model can learn how far
to trust them and FINDRISC can be scored from them alone.
"""

from __future__ import annotations

import numpy as np

from chronorisk.data.declaration import FeatureSpec
from chronorisk.data.table import Table
from features.demographics import levels
from features.pointintime import Pairs, join_before, last_row

SPECS = [
    FeatureSpec("q_active_30min", "applications", "flag", "Says they are active at least 30 minutes a day", -1,
                "Physically active 30 minutes a day (self-reported, 1 = yes): {value}", fmt="{:.0f}"),
    FeatureSpec("q_daily_veg_fruit", "applications", "flag", "Says they eat vegetables or fruit every day", -1,
                "Vegetables or fruit every day (self-reported, 1 = yes): {value}", fmt="{:.0f}"),
    FeatureSpec("q_ever_bp_treatment", "applications", "flag", "Says they were ever treated for high blood pressure",
                1, "Ever treated for high blood pressure (self-reported, 1 = yes): {value}", fmt="{:.0f}"),
    FeatureSpec("q_ever_high_glucose", "applications", "flag", "Says they were ever told of high blood glucose", 1,
                "Ever told of high blood glucose (self-reported, 1 = yes): {value}", fmt="{:.0f}"),
    FeatureSpec("q_family_history_level", "applications", "level",
                "Self-reported family history of diabetes: 0 none, 1 second degree, 2 first degree", 1,
                "Family history of diabetes (self-reported; 0 none, 1 second-degree, 2 first-degree): {value}",
                fmt="{:.0f}"),
    FeatureSpec("q_waist_cm", "applications", "cm", "Self-reported waist circumference", 1,
                "Waist circumference (self-reported): {value}", fmt="{:,.0f}"),
    FeatureSpec("q_smoker", "applications", "flag", "Says they smoke", 1,
                "Smoker (self-reported, 1 = yes): {value}", fmt="{:.0f}"),
    FeatureSpec("q_bmi", "applications", "kg/m2", "BMI from self-reported height and weight", 1,
                "Body-mass index (self-reported height and weight): {value}"),
]
NAMES = [s.name for s in SPECS]
FLAGS = ["active_30min", "daily_veg_fruit", "ever_bp_treatment", "ever_high_glucose", "smoker"]


def questionnaire_features(applications: Table, pairs: Pairs) -> dict[str, np.ndarray]:
    """The latest application dated before the index date (the day after it, for an applicant)."""
    j = join_before(applications, pairs, date_col="application_date", tiebreak=FLAGS)
    latest = last_row(j)
    has = latest >= 0
    take = j.rows[np.where(has, latest, 0)] if len(j) else np.zeros(pairs.n, np.int64)
    src = j.source

    def col(name: str) -> np.ndarray:
        if not len(j):
            return np.full(pairs.n, np.nan)
        return np.where(has, src.float(name)[take], np.nan)

    out = {f"q_{flag}": col(flag) for flag in FLAGS}
    fam = levels(applications["family_history"])[take] if len(j) else np.full(pairs.n, np.nan)
    out["q_family_history_level"] = np.where(has, fam, np.nan)
    out["q_waist_cm"] = col("waist_cm")
    out["q_bmi"] = col("weight_kg") / (col("height_cm") / 100.0) ** 2
    return out

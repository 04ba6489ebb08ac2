"""Application questionnaire features (`q_*`): what the applicant said, as they said it.

Self-reported answers are kept apart from recorded measurements, so the model can learn how far
to trust them and FINDRISC can be scored from them alone.
"""

from __future__ import annotations

import pandas as pd

from features.demographics import FAMILY_LEVEL
from features.pointintime import KEY, aligned, records_before
from features.registry import FeatureSpec

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


def questionnaire_features(applications: pd.DataFrame, index: pd.DataFrame) -> pd.DataFrame:
    """The latest application dated before the index date (the day after it, for an applicant)."""
    recs = records_before(applications, index, date_col="application_date")
    frame = pd.DataFrame({"member_id": recs["member_id"], "index_date": recs["index_date"],
                          "application_date": recs["application_date"]})
    for flag in FLAGS:
        frame[f"q_{flag}"] = recs[flag].astype("Float64").astype("float64")
    frame["q_family_history_level"] = recs["family_history"].map(FAMILY_LEVEL).astype("float64")
    frame["q_waist_cm"] = recs["waist_cm"].astype("float64")
    frame["q_bmi"] = recs["weight_kg"].astype("float64") / (recs["height_cm"].astype("float64") / 100.0) ** 2
    # records_before sorted by date: the last row of each pair is its latest application, whole.
    last = frame.drop_duplicates(KEY, keep="last").set_index(KEY)[NAMES]
    return aligned(last, index, NAMES)

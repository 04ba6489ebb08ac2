"""Features from consultations: anthropometry, vitals, diagnoses, medications and utilisation.

Diagnosis and medication flags are "ever recorded before the index date"; a member with no
consultation before it has NaN flags (unknown), not zeros, and coverage features say so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.pointintime import KEY, aligned, latest, records_before
from features.registry import FeatureSpec

# ICD-10 / ATC prefixes of each flag, matched at the start of any code in the ";"-list.
CODE_FLAGS: dict[str, tuple[str, str]] = {
    "dx_prediabetes": ("icd10_codes", r"R73"),
    "dx_hypertension": ("icd10_codes", r"I1[0-5]"),
    "dx_dyslipidaemia": ("icd10_codes", r"E78"),
    "dx_obesity": ("icd10_codes", r"E66"),
    "dx_gestational_diabetes": ("icd10_codes", r"O24"),
    "dx_cardiovascular": ("icd10_codes", r"I2[0-5]|I6[0-9]"),
    "rx_antihypertensive": ("atc_codes", r"C0[23789]"),
    "rx_statin": ("atc_codes", r"C10AA"),
}
_FLAG_TEXT = {
    "dx_prediabetes": "Prediabetes or raised glucose recorded (ICD-10 R73)",
    "dx_hypertension": "Hypertension recorded (ICD-10 I10-I15)",
    "dx_dyslipidaemia": "Dyslipidaemia recorded (ICD-10 E78)",
    "dx_obesity": "Obesity recorded (ICD-10 E66)",
    "dx_gestational_diabetes": "Gestational diabetes recorded (ICD-10 O24)",
    "dx_cardiovascular": "Heart or cerebrovascular disease recorded (ICD-10 I20-I25, I60-I69)",
    "rx_antihypertensive": "Blood-pressure medication prescribed (ATC C02, C03, C07, C08, C09)",
    "rx_statin": "Statin prescribed (ATC C10AA)",
}

SPECS = [
    FeatureSpec("bmi_latest", "consultations", "kg/m2",
                "Latest recorded weight over the median recorded height squared", 1, "Body-mass index: {value}"),
    FeatureSpec("bmi_change_1y", "consultations", "kg/m2",
                "Latest BMI minus the mean BMI recorded one to two years before the index date", 1,
                "Change in body-mass index over the last year: {value}", fmt="{:+,.1f}"),
    FeatureSpec("waist_cm_latest", "consultations", "cm", "Latest recorded waist circumference", 1,
                "Waist circumference: {value}", fmt="{:,.0f}"),
    FeatureSpec("sbp_mmhg_latest", "consultations", "mmHg", "Latest recorded systolic blood pressure", 1,
                "Latest systolic blood pressure: {value}", fmt="{:,.0f}"),
    FeatureSpec("dbp_mmhg_latest", "consultations", "mmHg", "Latest recorded diastolic blood pressure", 1,
                "Latest diastolic blood pressure: {value}", fmt="{:,.0f}"),
    FeatureSpec("sbp_mmhg_mean_3y", "consultations", "mmHg", "Mean systolic pressure over the last three years", 1,
                "Average systolic blood pressure over three years: {value}", fmt="{:,.0f}"),
    FeatureSpec("dbp_mmhg_mean_3y", "consultations", "mmHg", "Mean diastolic pressure over the last three years", 1,
                "Average diastolic blood pressure over three years: {value}", fmt="{:,.0f}"),
    FeatureSpec("high_bp_readings", "consultations", "count", "Readings of 140/90 mmHg or more, ever", 1,
                "Blood-pressure readings of 140/90 or more: {value}", fmt="{:,.0f}"),
    *[FeatureSpec(name, "consultations", "flag", text, 1, text + " (1 = yes): {value}", fmt="{:.0f}")
      for name, text in _FLAG_TEXT.items()],
    FeatureSpec("smoker_recorded", "consultations", "flag", "Latest recorded smoking status is current smoker", 1,
                "Current smoker on record (1 = yes): {value}", fmt="{:.0f}"),
    FeatureSpec("consultations_365d", "consultations", "count", "Consultations in the last year", 0,
                "Consultations in the last year: {value}", fmt="{:,.0f}"),
    FeatureSpec("inpatient_365d", "consultations", "count", "Inpatient stays in the last year", 0,
                "Inpatient stays in the last year: {value}", fmt="{:,.0f}"),
    FeatureSpec("online_share_365d", "consultations", "share", "Share of last year's consultations held online", 0,
                "Share of consultations online in the last year: {value}", fmt="{:.0%}"),
    FeatureSpec("days_since_last_consultation", "consultations", "days", "Days since the latest consultation", 0,
                "Days since the last consultation: {value}", fmt="{:,.0f}"),
    FeatureSpec("consultation_history_days", "consultations", "days", "Days since the first recorded consultation", 0,
                "Length of consultation history: {value}", fmt="{:,.0f}"),
]
NAMES = [s.name for s in SPECS]


def code_flags(consultations: pd.DataFrame) -> pd.DataFrame:
    """One boolean column per flag, matched once per consultation (before any index join)."""
    out = {}
    for name, (column, prefix) in CODE_FLAGS.items():
        codes = consultations[column].astype("str").fillna("")
        out[name] = codes.str.contains(rf"(?:^|;)(?:{prefix})", regex=True).to_numpy(dtype=bool, na_value=False)
    return pd.DataFrame(out, index=consultations.index)


def consultation_features(consultations: pd.DataFrame, index: pd.DataFrame) -> pd.DataFrame:
    cols = ["member_id", "date", "consultation_id", "channel", "weight_kg", "height_cm", "waist_cm",
            "sbp_mmhg", "dbp_mmhg", "smoking_status"]
    base = pd.concat([consultations[cols], code_flags(consultations)], axis=1)
    recs = records_before(base, index, tiebreak=("consultation_id",))
    g = recs.groupby(KEY, sort=False)
    out = latest(recs, ["weight_kg", "waist_cm", "sbp_mmhg", "dbp_mmhg"])
    height = g["height_cm"].median()
    out["bmi_latest"] = out["weight_kg"] / (height / 100.0) ** 2
    older = recs[(recs["days_before"] > 365) & (recs["days_before"] <= 730)]
    old_weight = older.groupby(KEY, sort=False)["weight_kg"].mean()
    out["bmi_change_1y"] = out["bmi_latest"] - old_weight.reindex(out.index) / (height / 100.0) ** 2
    out = out.rename(columns={"waist_cm": "waist_cm_latest", "sbp_mmhg": "sbp_mmhg_latest",
                              "dbp_mmhg": "dbp_mmhg_latest"})
    recent3 = recs[recs["days_before"] <= 1096].groupby(KEY, sort=False)
    out["sbp_mmhg_mean_3y"] = recent3["sbp_mmhg"].mean()
    out["dbp_mmhg_mean_3y"] = recent3["dbp_mmhg"].mean()
    high = (recs["sbp_mmhg"] >= 140) | (recs["dbp_mmhg"] >= 90)
    out["high_bp_readings"] = high.fillna(False).astype(float).groupby([recs[k] for k in KEY], sort=False).sum()
    flags = g[list(CODE_FLAGS)].max().astype(float)
    out = out.join(flags)
    status = latest(recs, ["smoking_status"])["smoking_status"]
    out["smoker_recorded"] = np.where(status.isna(), np.nan, (status == "current").to_numpy(dtype=float,
                                                                                            na_value=0.0))
    year = recs[recs["days_before"] <= 365]
    gy = year.groupby(KEY, sort=False)
    n_year = gy.size()
    out["consultations_365d"] = n_year.reindex(out.index).fillna(0.0)
    out["inpatient_365d"] = (year["channel"] == "inpatient").astype(float).groupby(
        [year[k] for k in KEY], sort=False).sum().reindex(out.index).fillna(0.0)
    out["online_share_365d"] = (year["channel"] == "online").astype(float).groupby(
        [year[k] for k in KEY], sort=False).mean()
    out["days_since_last_consultation"] = g["days_before"].min()
    out["consultation_history_days"] = g["days_before"].max()
    features = aligned(out, index, NAMES)
    # No consultation before the index date: counts are 0; measurements and flags stay unknown.
    features["consultations_365d"] = features["consultations_365d"].fillna(0.0)
    features["inpatient_365d"] = features["inpatient_365d"].fillna(0.0)
    features["high_bp_readings"] = features["high_bp_readings"].fillna(0.0)
    return features

"""Features from consultations: anthropometry, vitals, diagnoses, medications and utilisation.

Diagnosis and medication flags are "ever recorded before the index date"; a member with no
consultation before it has NaN flags (unknown), not zeros, and coverage features say so. Counts,
history lengths and "days since" live within fixed windows, so they do
not grow with the calendar as a member's history lengthens.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from chronorisk.data.declaration import FeatureSpec
from chronorisk.data.table import Table
from chronorisk.data.text_columns import ColumnArray
from features.pointintime import Pairs, count, join_before, last, maximum, mean, median, minimum

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
                "Latest recorded weight over the median recorded height squared (the latest BMI recorded as such "
                "where weight or height is missing)", 1, "Body-mass index: {value}"),
    FeatureSpec("bmi_change_1y", "consultations", "kg/m2",
                "Latest BMI minus the mean BMI recorded one to two years before the index date", 1,
                "Change in body-mass index over the last year: {value}", fmt="{:+,.1f}"),
    FeatureSpec("waist_cm_latest", "consultations", "cm", "Latest recorded waist circumference", 1,
                "Waist circumference: {value}", fmt="{:,.0f}"),
    FeatureSpec("triceps_skinfold_mm_latest", "consultations", "mm", "Latest recorded triceps skinfold thickness", 1,
                "Triceps skinfold: {value}", fmt="{:,.0f}"),
    FeatureSpec("heart_rate_bpm_latest", "consultations", "bpm", "Latest pulse taken at a consultation", 1,
                "Pulse at the latest consultation: {value}", fmt="{:,.0f}"),
    FeatureSpec("pregnancies_latest", "consultations", "count", "Number of pregnancies, as last recorded", 1,
                "Pregnancies on record: {value}", fmt="{:,.0f}"),
    FeatureSpec("sbp_mmhg_latest", "consultations", "mmHg", "Latest recorded systolic blood pressure", 1,
                "Latest systolic blood pressure: {value}", fmt="{:,.0f}"),
    FeatureSpec("dbp_mmhg_latest", "consultations", "mmHg", "Latest recorded diastolic blood pressure", 1,
                "Latest diastolic blood pressure: {value}", fmt="{:,.0f}"),
    FeatureSpec("sbp_mmhg_mean_3y", "consultations", "mmHg", "Mean systolic pressure over the last three years", 1,
                "Average systolic blood pressure over three years: {value}", fmt="{:,.0f}"),
    FeatureSpec("dbp_mmhg_mean_3y", "consultations", "mmHg", "Mean diastolic pressure over the last three years", 1,
                "Average diastolic blood pressure over three years: {value}", fmt="{:,.0f}"),
    FeatureSpec("high_bp_readings", "consultations", "count", "Readings of 140/90 mmHg or more in the last three "
                "years", 1, "Blood-pressure readings of 140/90 or more in three years: {value}", fmt="{:,.0f}"),
    *[FeatureSpec(name, "consultations", "flag", text, 1, text + " (1 = yes): {value}", fmt="{:.0f}")
      for name, text in _FLAG_TEXT.items()],
    FeatureSpec("smoker_recorded", "consultations", "flag", "Latest recorded smoking status is current smoker", 1,
                "Current smoker on record (1 = yes): {value}", fmt="{:.0f}"),
    FeatureSpec("consultations_365d", "consultations", "count", "Consultations in the last year", 0,
                "Consultations in the last year: {value}", fmt="{:,.0f}", kind="coverage"),
    FeatureSpec("inpatient_365d", "consultations", "count", "Inpatient stays in the last year", 0,
                "Inpatient stays in the last year: {value}", fmt="{:,.0f}"),
    FeatureSpec("online_share_365d", "consultations", "share", "Share of last year's consultations held online", 0,
                "Share of consultations online in the last year: {value}", fmt="{:.0%}", kind="coverage"),
    FeatureSpec("days_since_last_consultation", "consultations", "days",
                "Days since the latest consultation (capped at 365: a year or more; missing: none)", 0,
                "Days since the last consultation: {value}", fmt="{:,.0f}", kind="coverage"),
    FeatureSpec("consultation_history_days", "consultations", "days",
                "Days since the first recorded consultation, capped at 365 (a year or more)", 0,
                "Length of consultation history: {value}", fmt="{:,.0f}", kind="coverage"),
]
NAMES = [s.name for s in SPECS]


HISTORY_CAP_DAYS = 365.0  # "a year or more": every eligible row has a year on the books (min_history_days)
_PATTERNS = {name: re.compile(rf"(?:^|;)(?:{prefix})") for name, (_, prefix) in CODE_FLAGS.items()}
# Same-day consultations are ordered by the values the order-sensitive features read (latest
# value, sums), so their order in the input never matters; counts and flags are order-free.
TIEBREAK = ("weight_kg", "height_cm", "waist_cm", "sbp_mmhg", "dbp_mmhg", "bmi", "triceps_skinfold_mm", "pregnancies",
            "heart_rate_bpm", "smoking_status")


def code_hits(codes: pd.Series | ColumnArray, patterns: Mapping[str, re.Pattern[str]]) -> dict[str, np.ndarray]:
    """Per pattern, the rows whose ";"-separated code list it finds. Code lists repeat a lot (a
    million consultations hold a few thousand distinct lists), so each distinct list is matched
    once and the answers mapped back: as fast for one applicant as for a whole book. The feature
    flags and the products' event definitions (training/labels.py) both match codes this way."""
    found, uniques = pd.factorize(codes)  # missing: code -1, which matches nothing
    out = {}
    for name, pattern in patterns.items():
        hits = np.array([pattern.search(str(u)) is not None for u in uniques] + [False], dtype=bool)
        out[name] = hits[found]  # code -1 (missing) picks the trailing False
    return out


def code_flags(consultations: Table) -> dict[str, np.ndarray]:
    """One boolean per flag and consultation."""
    out = {}
    for column in ("icd10_codes", "atc_codes"):
        out.update(code_hits(consultations[column],
                             {name: _PATTERNS[name] for name, (col, _) in CODE_FLAGS.items() if col == column}))
    return {name: out[name] for name in CODE_FLAGS}


def consultation_features(consultations: Table, pairs: Pairs) -> dict[str, np.ndarray]:
    j = join_before(consultations, pairs, tiebreak=TIEBREAK)
    seen = count(j) > 0
    weight, height = j.col("weight_kg"), j.col("height_cm")
    sbp, dbp = j.col("sbp_mmhg"), j.col("dbp_mmhg")
    height_m = median(j, height) / 100.0
    out: dict[str, np.ndarray] = {}
    recorded = j.col("bmi")  # BMI as the extract recorded it: used where weight and height do not give one
    from_weight = last(j, weight) / height_m**2
    out["bmi_latest"] = np.where(np.isnan(from_weight), last(j, recorded), from_weight)
    older = (j.days_before > 365) & (j.days_before <= 730)
    older_weight = mean(j.where(older), weight[older]) / height_m**2
    older_bmi = np.where(np.isnan(older_weight), mean(j.where(older), recorded[older]), older_weight)
    out["bmi_change_1y"] = out["bmi_latest"] - older_bmi
    out["triceps_skinfold_mm_latest"] = last(j, j.col("triceps_skinfold_mm"))
    out["pregnancies_latest"] = last(j, j.col("pregnancies"))
    out["heart_rate_bpm_latest"] = last(j, j.col("heart_rate_bpm"))
    out["waist_cm_latest"] = last(j, j.col("waist_cm"))
    out["sbp_mmhg_latest"] = last(j, sbp)
    out["dbp_mmhg_latest"] = last(j, dbp)
    recent = j.days_before <= 1096
    out["sbp_mmhg_mean_3y"] = mean(j.where(recent), sbp[recent])
    out["dbp_mmhg_mean_3y"] = mean(j.where(recent), dbp[recent])
    high = (np.nan_to_num(sbp, nan=0.0) >= 140) | (np.nan_to_num(dbp, nan=0.0) >= 90)
    out["high_bp_readings"] = count(j, high & recent)
    for name, flag in code_flags(consultations).items():
        out[name] = np.where(seen, (count(j, flag[j.rows]) > 0).astype(float), np.nan)
    status = j.raw("smoking_status")
    known = ~pd.isna(status)
    current = np.where(known, status == "current", False).astype(float)
    out["smoker_recorded"] = last(j, np.where(known, current, np.nan))
    year = j.days_before <= 365
    out["consultations_365d"] = count(j, year)
    channel = j.raw("channel")
    out["inpatient_365d"] = count(j, year & (channel == "inpatient"))
    online = count(j, year & (channel == "online"))
    n_year = out["consultations_365d"]
    out["online_share_365d"] = np.where(n_year > 0, online / np.maximum(n_year, 1), np.nan)
    out["days_since_last_consultation"] = np.minimum(minimum(j, j.days_before.astype(float)), HISTORY_CAP_DAYS)
    out["consultation_history_days"] = np.minimum(maximum(j, j.days_before.astype(float)), HISTORY_CAP_DAYS)
    return out

"""Insurer-style extracts made from a synthetic cohort, for the own-data example and its tests.

`member_snapshots` takes one snapshot per eligible member at an application date (the latest
questionnaire, vitals and labs on or before it, the recorded outcome within the product's
horizon after it, and a made-up skinfold thickness our registry does not know). The writers
then deliver it as an insurer might: flat, in foreign names, units (lb, mg/dL), codes and a
day-first date format (`experiments/mappings/example_flat.yaml` maps it back); or relational in
our own names, the reference the flat import must reproduce.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from chronorisk.data.units import GLUCOSE_MG_DL_PER_MMOL_L, LB_TO_KG
from chronorisk.model.product import ProductSpec, Split
from training.labels import label_index_dates

VITALS = ("weight_kg", "height_cm", "waist_cm", "sbp_mmhg", "dbp_mmhg")
LABS = ("hba1c", "fasting_glucose", "hdl", "triglycerides")
QUESTIONS = ("active_30min", "daily_veg_fruit", "ever_bp_treatment", "ever_high_glucose", "family_history", "smoker",
             "waist_cm", "height_cm", "weight_kg")
# our column -> the example insurer's column
FLAT_NAMES = {"member_id": "ApplicantNo", "application_date": "AppDate", "birth_date": "DOB", "sex": "Gender",
              "region": "Province", "q_active_30min": "Exercise30", "q_daily_veg_fruit": "VegDaily",
              "q_ever_bp_treatment": "BPTreated", "q_ever_high_glucose": "HighSugarEver",
              "q_family_history": "FamilyDM", "q_smoker": "Smoker", "q_waist_cm": "WaistSelf",
              "q_height_cm": "HeightSelf", "q_weight_kg": "WeightSelfLb", "weight_kg": "ExamWeightLb",
              "height_cm": "ExamHeight", "waist_cm": "ExamWaist", "sbp_mmhg": "SysBP", "dbp_mmhg": "DiaBP",
              "hba1c": "HbA1cPct", "fasting_glucose": "FPG_mgdl", "hdl": "HDL", "triglycerides": "TG",
              "skinfold_mm": "TricepsSkinfold", "label": "DMWithin3y"}
SEX_CODES = {"F": "female", "M": "male"}
FAMILY_CODES = {"none": "0", "second_degree": "2nd", "first_degree": "1st"}


def _latest(frame: pd.DataFrame, value: str, cutoff: pd.Timestamp) -> pd.Series:
    rows = frame[(frame["date"] <= cutoff) & frame[value].notna()].sort_values(["member_id", "date"], kind="stable")
    return rows.groupby("member_id")[value].last()


def member_snapshots(tables: dict[str, pd.DataFrame], spec: ProductSpec, application_dates: list[date],
                     seed: int = 7) -> pd.DataFrame:
    """One row per eligible member (canonical names and units), application dates assigned in turn."""
    rng = np.random.default_rng(seed)
    members = tables["members"].sort_values("member_id", ignore_index=True)
    assigned = {m: application_dates[i % len(application_dates)] for i, m in enumerate(members["member_id"])}
    frames = []
    for app in application_dates:
        t = app + timedelta(days=1)
        part = {k: v[v["member_id"].isin([m for m, d in assigned.items() if d == app])] for k, v in tables.items()}
        one = spec.model_copy(update={"index_dates": [t], "split": Split(train=[], validation=[], test=[t])})
        labelled = label_index_dates(part, one).rows[["member_id", "label"]]
        cutoff = pd.Timestamp(app)
        snap = labelled.merge(members, on="member_id", how="left").assign(application_date=cutoff)
        apps = part["applications"]
        latest_app = apps[apps["application_date"] <= cutoff].sort_values(["member_id", "application_date"])
        latest_app = latest_app.groupby("member_id")[list(QUESTIONS)].last().add_prefix("q_")
        snap = snap.merge(latest_app, left_on="member_id", right_index=True, how="left")
        for v in VITALS:
            snap[v] = snap["member_id"].map(_latest(part["consultations"], v, cutoff))
        labs = part["lab_results"]
        for test in LABS:
            snap[test] = snap["member_id"].map(_latest(labs[labs["test"] == test], "value", cutoff))
        frames.append(snap)
    out = pd.concat(frames, ignore_index=True).sort_values("member_id", ignore_index=True)
    bmi = out["weight_kg"] / (out["height_cm"] / 100.0) ** 2
    out["skinfold_mm"] = np.round(4.0 + 0.9 * (bmi - 18.0) + rng.normal(0, 2.5, len(out)), 1).clip(3, 60)
    return out


def write_flat(snap: pd.DataFrame, path: Path) -> Path:
    """The snapshots as one CSV row per applicant, the way the example insurer's system exports them."""
    out = pd.DataFrame({
        FLAT_NAMES["member_id"]: snap["member_id"],
        FLAT_NAMES["application_date"]: snap["application_date"].dt.strftime("%d/%m/%Y"),
        FLAT_NAMES["birth_date"]: pd.to_datetime(snap["birth_date"]).dt.strftime("%d/%m/%Y"),
        FLAT_NAMES["sex"]: snap["sex"].map(SEX_CODES), FLAT_NAMES["region"]: snap["region"],
        FLAT_NAMES["q_family_history"]: snap["q_family_history"].map(FAMILY_CODES),
    })
    for flag in ("active_30min", "daily_veg_fruit", "ever_bp_treatment", "ever_high_glucose", "smoker"):
        out[FLAT_NAMES[f"q_{flag}"]] = snap[f"q_{flag}"].map({True: "Y", False: "N"})
    out[FLAT_NAMES["q_waist_cm"]] = snap["q_waist_cm"]
    out[FLAT_NAMES["q_height_cm"]] = snap["q_height_cm"]
    out[FLAT_NAMES["q_weight_kg"]] = snap["q_weight_kg"] / LB_TO_KG
    out[FLAT_NAMES["weight_kg"]] = snap["weight_kg"] / LB_TO_KG
    for col in ("height_cm", "waist_cm", "sbp_mmhg", "dbp_mmhg", "hba1c", "hdl", "triglycerides", "skinfold_mm"):
        out[FLAT_NAMES[col]] = snap[col]
    out[FLAT_NAMES["fasting_glucose"]] = snap["fasting_glucose"] * GLUCOSE_MG_DL_PER_MMOL_L
    out[FLAT_NAMES["label"]] = snap["label"].map({1: "Y", 0: "N"})
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False)
    return path


def write_relational(snap: pd.DataFrame, folder: Path) -> Path:
    """The same snapshots as a raw folder in our own names and units: one member, application and
    consultation each, and the lab results, all dated the application date."""
    folder.mkdir(parents=True, exist_ok=True)
    app = snap["application_date"]
    members = snap[["member_id", "birth_date", "sex", "region", "family_history_diabetes",
                    "family_history_hypertension"]].assign(enrollment_start=app, enrollment_end=pd.NaT)
    members["family_history_diabetes"] = None  # a flat extract carries only the questionnaire's answer
    members["family_history_hypertension"] = None
    apps = snap[["member_id", *(f"q_{q}" for q in QUESTIONS)]].rename(columns=lambda c: c.removeprefix("q_"))
    apps.insert(1, "application_date", app)
    cons = snap[["member_id", *VITALS]].assign(consultation_id=snap["member_id"] + "-application", date=app,
                                               channel="outpatient")
    labs = pd.concat([pd.DataFrame({"member_id": snap["member_id"], "date": app, "test": test, "value": snap[test],
                                    "unit": "%" if test == "hba1c" else "mmol/L"})[snap[test].notna().to_numpy()]
                      for test in LABS], ignore_index=True)
    for name, frame in (("members", members), ("applications", apps), ("consultations", cons),
                        ("lab_results", labs)):
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    return folder

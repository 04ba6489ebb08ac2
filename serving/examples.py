"""Applicant requests built from a raw cohort: for the demo request, the tests and the load bench.

The request carries the member's records up to the application date, as an insurer would send
them; the synthetic member id becomes the applicant id (pseudonymous, never a person's name).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd

from serving.schemas import Applicant


def _clean(record: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in record.items():
        if isinstance(value, pd.Timestamp):
            value = value.date().isoformat()
        elif isinstance(value, date):
            value = value.isoformat()
        elif value is pd.NA or (isinstance(value, float) and pd.isna(value)):
            value = None
        out[key] = value
    return out


def applicant_request(tables: dict[str, pd.DataFrame], member_id: str, application_date: date,
                      history_days: int = 730) -> dict[str, Any]:
    """The JSON body of an Applicant for one member of accepted (canonical) tables."""
    t = pd.Timestamp(application_date)
    since = t - pd.Timedelta(days=history_days)
    m = tables["members"].set_index("member_id").loc[member_id]
    apps = tables["applications"]
    a = apps[apps["member_id"] == member_id].iloc[-1]

    def rows(name: str, cols: list[str]) -> list[dict[str, Any]]:
        f = tables[name]
        f = f[(f["member_id"] == member_id) & (f["date"] <= t) & (f["date"] >= since)]
        return [_clean(r) for r in f[cols].to_dict("records")]

    consultations = rows("consultations", ["date", "channel", "icd10_codes", "atc_codes", "weight_kg", "height_cm",
                                           "waist_cm", "sbp_mmhg", "dbp_mmhg", "smoking_status"])
    for c in consultations:
        c["icd10_codes"] = [x for x in (c["icd10_codes"] or "").split(";") if x]
        c["atc_codes"] = [x for x in (c["atc_codes"] or "").split(";") if x]
    body: dict[str, Any] = {
        "applicant_id": member_id,
        "demographics": _clean({"birth_date": m["birth_date"], "sex": m["sex"], "region": m["region"],
                                "family_history_diabetes": m["family_history_diabetes"],
                                "family_history_hypertension": m["family_history_hypertension"]}),
        "questionnaire": _clean({"application_date": application_date, **{k: a[k] for k in (
            "active_30min", "daily_veg_fruit", "ever_bp_treatment", "ever_high_glucose", "family_history", "smoker",
            "waist_cm", "height_cm", "weight_kg")}}),
        "consultations": consultations,
        "lab_results": rows("lab_results", ["date", "test", "value", "unit"]),
        "wearable_daily": rows("wearable_daily", ["date", "steps", "resting_hr", "sleep_minutes", "active_minutes",
                                                  "wear_minutes"]),
    }
    for key in ("active_30min", "daily_veg_fruit", "ever_bp_treatment", "ever_high_glucose", "smoker"):
        body["questionnaire"][key] = bool(body["questionnaire"][key])
    Applicant.model_validate(body)  # an example that does not validate is a bug here, not in the service
    return body


def standard_applicant(application_date: date = date(2023, 6, 30), seed: int = 7) -> dict[str, Any]:
    """The load bench's standard applicant: a year of wearable days, 10 consultations, 8 lab results.

    Values are drawn from a seeded generator, so every run sends the same body.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    t = pd.Timestamp(application_date)
    days = [(t - pd.Timedelta(days=k)).date().isoformat() for k in range(365, 0, -1)]
    wear = [{"date": d, "steps": int(rng.integers(2000, 12000)), "resting_hr": round(float(rng.normal(66, 3)), 1),
             "sleep_minutes": float(rng.integers(330, 500)), "active_minutes": float(rng.integers(5, 90)),
             "wear_minutes": float(rng.integers(900, 1440))} for d in days]
    visits = [(t - pd.Timedelta(days=int(k))).date().isoformat() for k in np.linspace(700, 20, 10)]
    consultations = [{"date": d, "channel": "outpatient" if i % 3 else "online",
                      "icd10_codes": ["I10"] if i % 4 == 0 else ["J06.9"],
                      "atc_codes": ["C08CA01"] if i % 4 == 0 else [],
                      "weight_kg": round(float(78 + rng.normal(0, 1)), 1), "height_cm": 172.0 if i == 0 else None,
                      "waist_cm": 94.0 if i % 5 == 0 else None, "sbp_mmhg": float(rng.integers(124, 146)),
                      "dbp_mmhg": float(rng.integers(78, 92)), "smoking_status": "never" if i == 0 else None}
                     for i, d in enumerate(visits)]
    tests = [("hba1c", 5.9, "%"), ("fasting_glucose", 6.1, "mmol/L"), ("hdl", 1.1, "mmol/L"), ("ldl", 3.4, "mmol/L"),
             ("triglycerides", 2.0, "mmol/L"), ("total_cholesterol", 5.4, "mmol/L"), ("egfr", 88.0, "mL/min/1.73m2"),
             ("hba1c", 6.0, "%")]
    labs = [{"date": (t - pd.Timedelta(days=400 if i < 7 else 30)).date().isoformat(), "test": name, "value": value,
             "unit": unit} for i, (name, value, unit) in enumerate(tests)]
    body = {
        "applicant_id": "STANDARD-APPLICANT-1",
        "demographics": {"birth_date": "1972-04-02", "sex": "M", "region": "east",
                         "family_history_diabetes": "second_degree", "family_history_hypertension": None},
        "questionnaire": {"application_date": application_date.isoformat(), "active_30min": False,
                          "daily_veg_fruit": True, "ever_bp_treatment": True, "ever_high_glucose": False,
                          "family_history": "second_degree", "smoker": False, "waist_cm": 93.0, "height_cm": 172.0,
                          "weight_kg": 77.0},
        "consultations": consultations, "lab_results": labs, "wearable_daily": wear,
    }
    Applicant.model_validate(body)
    return body

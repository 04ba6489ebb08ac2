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

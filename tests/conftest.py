"""Shared fixtures: a small hand-made raw cohort whose every row is known by heart, and a writer
that delivers it as a data owner would (a folder of parquet or csv files plus `_manifest.json`).

The cohort (extract date 2024-12-31): 6 members M-1001..M-1006; 6 applications (one each);
12 consultations C-0001..C-0012 (two per member, in member order); 12 lab results (two per
member, in member order); 10 wearable days (M-1001 on 2023-01-01..05, then M-1003 on
2023-02-01..05). Members and consultations carry a canary column `full_name`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

CANARY = "Zhang Wei 13800138000"


def pytest_configure(config: pytest.Config) -> None:
    """Tests that build settings from the environment get a real-looking pepper: the environment now
    defaults to production, where the placeholder is refused (tests that need the refusal unset it)."""
    import os

    os.environ.setdefault("CHRONORISK_ID_PEPPER", "pytest-session-pepper-5b1e0c")
EXTRACT_DATE = date(2024, 12, 31)


def _d(text: str) -> date:
    return date.fromisoformat(text)


def hand_cohort() -> dict[str, pd.DataFrame]:
    ids = [f"M-100{i}" for i in range(1, 7)]
    members = pd.DataFrame({
        "member_id": ids,
        "birth_date": [_d(x) for x in ("1970-05-10", "1965-11-20", "1980-01-31", "1958-07-04", "1990-12-25",
                                       "1975-03-03")],
        "sex": ["F", "M", "F", "M", "F", "M"],
        "region": ["north", "east", "south", "central", "southwest", "northwest"],
        "enrollment_start": [_d(x) for x in ("2016-03-01", "2016-06-15", "2017-01-01", "2017-09-10",
                                             "2018-02-01", "2018-05-20")],
        "enrollment_end": [None, _d("2022-06-30"), None, None, None, None],
        "family_history_diabetes": ["none", "second_degree", "first_degree", None, "none", "none"],
        "family_history_hypertension": ["first_degree", None, "none", None, "none", "second_degree"],
        "full_name": [CANARY] * 6,
    })
    applications = pd.DataFrame({
        "member_id": ids,
        "application_date": [_d(x) for x in ("2016-02-10", "2016-05-26", "2016-12-12", "2017-08-21",
                                             "2018-01-12", "2018-04-30")],
        "active_30min": [True, False, True, False, True, True],
        "daily_veg_fruit": [True, True, False, False, True, False],
        "ever_bp_treatment": [False, True, False, True, False, False],
        "ever_high_glucose": [False, True, False, False, False, False],
        "smoker": [False, True, False, True, False, True],
        "family_history": ["none", "second_degree", "first_degree", "none", "none", "none"],
        "waist_cm": [78.0, 96.0, 82.0, 101.0, 70.0, 90.0],
        "height_cm": [162.0, 175.0, 158.0, 170.0, 165.0, 178.0],
        "weight_kg": [58.0, 84.5, 61.0, 88.0, 54.0, np.nan],
    })
    consultations = pd.DataFrame({
        "consultation_id": [f"C-{i:04d}" for i in range(1, 13)],
        "member_id": [m for m in ids for _ in range(2)],
        "date": [_d(x) for x in ("2019-03-04", "2021-07-08", "2019-05-06", "2020-09-10", "2020-01-02",
                                 "2022-03-04", "2019-11-12", "2023-05-06", "2020-06-07", "2021-08-09",
                                 "2022-10-11", "2023-12-13")],
        "channel": ["outpatient", "online", "inpatient", "outpatient", "online", "outpatient",
                    "outpatient", "inpatient", "online", "outpatient", "outpatient", "online"],
        "icd10_codes": ["J06.9", "", "E11.9;I10", "I10", "R51", "Z00.0", "I10;E78.5", "I25.1", "", "K29.7",
                        "E66.9", "J20.9"],
        "atc_codes": ["J01CA04", "", "A10BA02;C09AA02", "C09AA02", "", "", "C08CA01;C10AA05", "C10AA05", "",
                      "A02BC01", "", "R05CB01"],
        "weight_kg": [58.5, np.nan, 85.0, 86.0, np.nan, 61.5, 88.5, 89.0, np.nan, 55.0, 91.0, np.nan],
        "height_cm": [162.0, np.nan, 175.5, np.nan, np.nan, 158.0, 170.0, np.nan, np.nan, np.nan, 178.0, np.nan],
        "waist_cm": [np.nan, np.nan, 97.0, np.nan, np.nan, np.nan, 102.5, np.nan, np.nan, 71.0, np.nan, np.nan],
        "sbp_mmhg": [118.0, np.nan, 145.0, 138.0, np.nan, 112.0, 150.0, 148.0, np.nan, 108.0, 126.0, np.nan],
        "dbp_mmhg": [76.0, np.nan, 92.0, 88.0, np.nan, 70.0, 95.0, 90.0, np.nan, 68.0, 82.0, np.nan],
        "smoking_status": ["never", None, "current", None, None, "never", "former", None, None, "never",
                           "current", None],
        "full_name": [CANARY] * 12,
    })
    lab_results = pd.DataFrame({
        "member_id": [m for m in ids for _ in range(2)],
        "date": [_d(x) for x in ("2020-03-01", "2020-03-01", "2020-04-01", "2020-04-01", "2021-01-15",
                                 "2021-01-15", "2021-06-01", "2021-06-01", "2022-02-02", "2022-02-02",
                                 "2022-03-03", "2022-03-03")],
        "test": ["hba1c", "fasting_glucose", "hba1c", "fasting_glucose", "ldl", "hdl", "egfr", "triglycerides",
                 "total_cholesterol", "hba1c", "hba1c", "egfr"],
        "value": [48.0, 5.4, 6.1, 126.0, 3.1, 50.0, 85.0, 150.0, 5.2, 5.6, 5.9, 95.0],
        "unit": ["mmol/mol", "mmol/L", "%", "mg/dL", "mmol/L", "MG/DL ", "mL/min/1.73m2", "mg/dl", "mmol/L",
                 "%", "%", "ml/min/1.73m2"],
    })
    wearable_daily = pd.DataFrame({
        "member_id": ["M-1001"] * 5 + ["M-1003"] * 5,
        "date": [_d(f"2023-01-0{i}") for i in range(1, 6)] + [_d(f"2023-02-0{i}") for i in range(1, 6)],
        "steps": pd.array([6012, 7450, None, 5120, 9033, 3010, 2875, 4102, 3566, 3999], dtype="Int64"),
        "resting_hr": [62.0, 61.5, np.nan, 63.0, 60.5, 71.0, 72.5, 70.0, 69.5, 71.5],
        "sleep_minutes": [420.0, 395.0, np.nan, 440.0, 410.0, 380.0, np.nan, 365.0, 390.0, 402.0],
        "active_minutes": [35.0, 48.0, np.nan, 22.0, 61.0, 8.0, 5.0, 15.0, 12.0, 14.0],
        "wear_minutes": [1300.0, 1250.0, 200.0, 1320.0, 1280.0, 1100.0, 1150.0, 1210.0, 1190.0, 1175.0],
    })
    return {"members": members, "applications": applications, "consultations": consultations,
            "lab_results": lab_results, "wearable_daily": wearable_daily}


def write_raw(frames: dict[str, pd.DataFrame], folder: Path, file_format: str = "parquet") -> Path:
    """Each frame as <table>.<format> in folder, with a `_manifest.json` naming the extract date."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        if file_format == "parquet":
            frame.to_parquet(folder / f"{name}.parquet", index=False)
        else:
            frame.to_csv(folder / f"{name}.csv", index=False)
    (folder / "_manifest.json").write_text(json.dumps({"extract_date": EXTRACT_DATE.isoformat()}))
    return folder


@pytest.fixture
def cohort() -> dict[str, pd.DataFrame]:
    return hand_cohort()


@pytest.fixture
def write_folder() -> Callable[..., Path]:
    return write_raw


@pytest.fixture
def pepper() -> bytes:
    return b"test-pepper-not-a-secret"


@pytest.fixture(scope="session")
def own_data(tmp_path_factory):
    """A flat insurer-style extract made from a small synthetic cohort, imported (tests/own_data_fixtures.py)."""
    from own_data_fixtures import build_own_data

    return build_own_data(tmp_path_factory.mktemp("own-data"))

"""A hand-made flat examination extract of the issue-15 shape (no id column, BMI and a 2-hour OGTT
as such, exact duplicates, one impossible diastolic), and its documented mapping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

MAPPING = Path("experiments/mappings/examination_flat.yaml")
PEPPER = b"test-pepper-for-the-examination-extract"
ROWS, DUPLICATES, BAD_ROW = 300, 12, 7  # row 7 carries a diastolic of 24 mmHg (the contract: 30-160)


def examination_extract() -> pd.DataFrame:
    """300 rows: 288 distinct women, then 12 exact copies of rows 0, 10, ..., 110 (no id to tell them apart)."""
    rng = np.random.default_rng(15)
    n = ROWS - DUPLICATES
    frame = pd.DataFrame({
        "Pregnancies": rng.integers(0, 12, n),
        "Glucose": rng.integers(70, 200, n),
        "BloodPressure": rng.integers(50, 100, n),
        "SkinThickness": rng.integers(10, 50, n),
        "BMI": np.round(rng.uniform(19, 45, n), 1),
        "DiabetesPedigreeFunction": np.round(0.100 + 0.003 * np.arange(n), 3),  # distinct: no accidental copies
        "Age": rng.integers(21, 70, n),
        "Outcome": rng.integers(0, 2, n),
    })
    frame.loc[BAD_ROW, "BloodPressure"] = 24
    frame.loc[3, ["Glucose", "SkinThickness"]] = 0  # 0: not measured (the mapping's `missing`)
    return pd.concat([frame, frame.iloc[list(range(0, 10 * DUPLICATES, 10))]], ignore_index=True)

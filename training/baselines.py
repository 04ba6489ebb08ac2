"""Baselines an actuary would use instead of our model: FINDRISC (and, with training, the GLM).

FINDRISC points follow the official questionnaire (Lindstrom and Tuomilehto, Diabetes Care
2003); it is scored from the application questionnaire as given, never from labs or diagnoses.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FINDRISC_BANDS = ((7, "low"), (12, "slightly elevated"), (15, "moderate"), (21, "high"), (27, "very high"))


def findrisc_points(frame: pd.DataFrame) -> pd.Series:
    """FINDRISC total (0-26) from columns age, bmi, waist_cm, sex ("F"/"M"), active_30min,
    daily_veg_fruit, ever_bp_treatment, ever_high_glucose, family_history.

    A missing item scores 0 points, as an unanswered question does on the paper form.
    """
    age = np.floor(frame["age"].to_numpy(dtype=float))  # completed years, as the form asks
    bmi = frame["bmi"].to_numpy(dtype=float)
    waist = frame["waist_cm"].to_numpy(dtype=float)
    male = (frame["sex"] == "M").to_numpy(dtype=bool)
    pts = np.select([age > 64, age >= 55, age >= 45], [4, 3, 2], 0)
    pts += np.select([bmi > 30, bmi >= 25], [3, 1], 0)
    lo, hi = np.where(male, 94.0, 80.0), np.where(male, 102.0, 88.0)
    pts += np.select([waist > hi, waist >= lo], [4, 3], 0)

    def flag(col: str) -> np.ndarray:
        return frame[col].astype("boolean").fillna(False).to_numpy(dtype=bool)

    def answered_no(col: str) -> np.ndarray:
        return (frame[col].astype("boolean") == False).fillna(False).to_numpy(dtype=bool)  # noqa: E712

    pts += 2 * answered_no("active_30min")
    pts += 1 * answered_no("daily_veg_fruit")
    pts += 2 * flag("ever_bp_treatment")
    pts += 5 * flag("ever_high_glucose")
    fam = frame["family_history"].astype("string")
    pts += np.select([(fam == "first_degree").fillna(False), (fam == "second_degree").fillna(False)], [5, 3], 0)
    return pd.Series(pts.astype(np.int64), index=frame.index, name="findrisc")


def findrisc_band(points: pd.Series) -> pd.Series:
    edges = [b for b, _ in FINDRISC_BANDS]
    labels = [name for _, name in FINDRISC_BANDS]
    idx = np.searchsorted(edges, points.to_numpy(), side="right")
    return pd.Series(np.array(labels, dtype=object)[np.minimum(idx, len(labels) - 1)], index=points.index)

"""Baselines an actuary would use instead of our model: FINDRISC and a logistic-regression GLM.

FINDRISC points follow the official questionnaire (Lindstrom and Tuomilehto, Diabetes Care
2003); it is scored from the application questionnaire as given, never from labs or diagnoses.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

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


LEVEL_TO_FAMILY = {0.0: "none", 1.0: "second_degree", 2.0: "first_degree"}


QUESTIONNAIRE = ("q_active_30min", "q_daily_veg_fruit", "q_ever_bp_treatment", "q_ever_high_glucose",
                 "q_family_history_level", "q_waist_cm", "q_bmi")


def findrisc_from_features(features: pd.DataFrame) -> pd.Series:
    """FINDRISC from the snapshot's questionnaire features (`q_*`) and age: the actuary's score.

    A row with no questionnaire at all (an examination extract) takes BMI and waist as measured
    (`bmi_latest`, `waist_cm_latest`), as the paper form's nurse would; its unanswered items score
    0. A row with a questionnaire is scored from it as given."""
    sex = np.where(features["sex_male"].to_numpy(dtype=float) == 1.0, "M", "F")
    no_form = features[list(QUESTIONNAIRE)].isna().all(axis=1)

    def measured(asked: str, taken: str) -> pd.Series:
        if taken not in features:
            return features[asked]
        return features[asked].where(~no_form, features[taken])

    frame = pd.DataFrame({
        "age": features["age_years"], "bmi": measured("q_bmi", "bmi_latest"),
        "waist_cm": measured("q_waist_cm", "waist_cm_latest"), "sex": sex,
        "active_30min": features["q_active_30min"].map({1.0: True, 0.0: False}),
        "daily_veg_fruit": features["q_daily_veg_fruit"].map({1.0: True, 0.0: False}),
        "ever_bp_treatment": features["q_ever_bp_treatment"].map({1.0: True, 0.0: False}),
        "ever_high_glucose": features["q_ever_high_glucose"].map({1.0: True, 0.0: False}),
        "family_history": features["q_family_history_level"].map(LEVEL_TO_FAMILY),
    }, index=features.index)
    return findrisc_points(frame)


def fit_glm(x: np.ndarray, y: np.ndarray, seed: int, c: float = 0.1) -> Pipeline:
    """The actuary's standard: L2 logistic regression on the same features (median-imputed with
    missing indicators, standardised)."""
    model = make_pipeline(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                          StandardScaler(), LogisticRegression(C=c, max_iter=2000, random_state=seed))
    return model.fit(x, y)

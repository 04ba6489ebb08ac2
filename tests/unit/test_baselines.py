"""FINDRISC points against the official questionnaire, worked out by hand."""

from __future__ import annotations

import pandas as pd

from training.baselines import findrisc_band, findrisc_points


def _row(**kw):
    base = {"age": 40, "bmi": 22.0, "waist_cm": 70.0, "sex": "F", "active_30min": True, "daily_veg_fruit": True,
            "ever_bp_treatment": False, "ever_high_glucose": False, "family_history": "none"}
    base.update(kw)
    return base


def test_a_young_lean_active_woman_scores_zero():
    assert findrisc_points(pd.DataFrame([_row()])).tolist() == [0]


def test_the_worst_answer_to_every_item_scores_26():
    worst = _row(age=70, bmi=31.0, waist_cm=110.0, sex="M", active_30min=False, daily_veg_fruit=False,
                 ever_bp_treatment=True, ever_high_glucose=True, family_history="first_degree")
    # 4 + 3 + 4 + 2 + 1 + 2 + 5 + 5 = 26
    assert findrisc_points(pd.DataFrame([worst])).tolist() == [26]


def test_item_boundaries_follow_the_published_table():
    rows = pd.DataFrame([
        _row(age=45),                         # 45-54: 2
        _row(age=55),                         # 55-64: 3
        _row(age=64.9),                       # 55-64: 3
        _row(bmi=25.0),                       # 25-30: 1
        _row(bmi=30.0),                       # 25-30: 1
        _row(bmi=30.1),                       # > 30: 3
        _row(sex="M", waist_cm=93.9),         # men < 94: 0
        _row(sex="M", waist_cm=94.0),         # men 94-102: 3
        _row(sex="F", waist_cm=88.5),         # women > 88: 4
        _row(family_history="second_degree"), # 3
    ])
    assert findrisc_points(rows).tolist() == [2, 3, 3, 1, 1, 3, 0, 3, 4, 3]


def test_bands_cut_at_7_12_15_and_21():
    pts = pd.Series([6, 7, 11, 12, 14, 15, 20, 21, 26])
    assert findrisc_band(pts).tolist() == ["low", "slightly elevated", "slightly elevated", "moderate", "moderate",
                                           "high", "high", "very high", "very high"]


def test_a_row_without_any_questionnaire_takes_bmi_and_waist_as_measured():
    """An examination extract has no form: a 50-year-old man with BMI 31 and waist 103 cm scores
    2 (age 45-54) + 3 (BMI > 30) + 4 (waist > 102 cm) = 9 by the published table; a row with a
    form is scored from the form even where a measurement exists."""
    import pandas as pd

    from training.baselines import QUESTIONNAIRE, findrisc_from_features

    nan = float("nan")
    rows = pd.DataFrame({"age_years": [50.0, 50.0], "sex_male": [1.0, 1.0], "bmi_latest": [31.0, 31.0],
                         "waist_cm_latest": [103.0, 103.0], **{q: [nan, nan] for q in QUESTIONNAIRE}})
    rows.loc[1, ["q_bmi", "q_waist_cm", "q_active_30min", "q_daily_veg_fruit"]] = [22.0, 80.0, 1.0, 1.0]
    assert findrisc_from_features(rows).tolist() == [9, 2]

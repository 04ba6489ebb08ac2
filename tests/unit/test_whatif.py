"""What-if edits of raw records and their summaries, against values worked out by hand
(the hand cohort of tests/conftest.py)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from chronorisk.data.contracts import validate_tables
from chronorisk.insights.whatif import edit_tables, summarise, touched_pairs
from chronorisk.model.product import WhatIfScenario, load_product
from features.build import compute_features

EXTRACT = date(2024, 12, 31)
STEPS = WhatIfScenario(name="steps_8000", description="steps", edit="steps_at_least", value=8000)
BMI = WhatIfScenario(name="bmi_minus_2", description="bmi", edit="bmi_change", value=-2)


@pytest.fixture
def tables(cohort, pepper):
    accepted, _, _ = validate_tables(cohort, extract_date=EXTRACT, pepper=pepper)
    return accepted


def _row(tables, member: str, when: str) -> pd.Series:
    pairs = pd.DataFrame({"member_id": [member], "index_date": [pd.Timestamp(when)]})
    return compute_features(tables, pairs).iloc[0]


def _members(records: pd.DataFrame) -> set[str]:
    return set(records["member_id"])


def test_steps_edit_raises_every_day_below_the_floor_and_leaves_missing_days_missing(tables):
    edited, records = edit_tables(tables, STEPS)
    touched = _members(records)
    steps = edited["wearable_daily"]["steps"].to_numpy(dtype=float)
    # M-1001: 6012, 7450, (none), 5120, 9033; M-1003: 3010, 2875, 4102, 3566, 3999
    np.testing.assert_array_equal(steps[:5], [8000, 8000, np.nan, 8000, 9033])
    np.testing.assert_array_equal(steps[5:], [8000] * 5)
    assert touched == {"M-1001", "M-1003"}
    assert tables["wearable_daily"]["steps"].iloc[0] == 6012  # the input is not edited in place


def test_steps_edit_moves_the_step_features(tables):
    edited, _ = edit_tables(tables, STEPS)
    before, after = _row(tables, "M-1001", "2023-01-06"), _row(edited, "M-1001", "2023-01-06")
    assert before["steps_mean_30d"] == pytest.approx((6012 + 7450 + 5120 + 9033) / 4)  # 6,903.75
    assert after["steps_mean_30d"] == pytest.approx((8000 * 3 + 9033) / 4)  # 8,258.25
    assert after["share_days_below_5000_90d"] == 0.0
    assert _row(edited, "M-1003", "2023-03-01")["steps_mean_30d"] == 8000.0


def test_bmi_edit_lowers_recorded_and_self_reported_bmi_by_exactly_two(tables):
    edited, records = edit_tables(tables, BMI)
    touched = _members(records)
    before, after = _row(tables, "M-1002", "2022-01-01"), _row(edited, "M-1002", "2022-01-01")
    assert before["bmi_latest"] == pytest.approx(86.0 / 1.755**2)  # 27.92
    assert after["bmi_latest"] == pytest.approx(86.0 / 1.755**2 - 2)
    assert after["q_bmi"] == pytest.approx(84.5 / 1.75**2 - 2)  # application: 84.5 kg, 175 cm
    assert after["bmi_change_1y"] == before["bmi_change_1y"] == 0.0
    weights = edited["consultations"].set_index("consultation_id")["weight_kg"]
    assert weights["C-0003"] == pytest.approx(85.0 - 2 * 1.755**2)  # 78.84
    assert "M-1006" in touched  # no weight on the application, but a weight and height on record
    assert np.isnan(edited["applications"]["weight_kg"].iloc[5])


def test_members_without_the_source_data_are_not_touched(tables):
    _, records = edit_tables(tables, STEPS)
    assert not _members(records) & {"M-1002", "M-1004", "M-1005", "M-1006"}  # no wearable records
    edited, _ = edit_tables(tables, STEPS)
    pd.testing.assert_series_equal(_row(edited, "M-1002", "2023-06-01"), _row(tables, "M-1002", "2023-06-01"))


def test_only_edits_dated_before_the_index_date_touch_a_pair(tables):
    _, records = edit_tables(tables, STEPS)  # M-1001 edited from 2023-01-01, M-1003 from 2023-02-01
    pairs = pd.DataFrame({"member_id": ["M-1001", "M-1001", "M-1003", "M-1003", "M-1002"],
                          "index_date": pd.to_datetime(["2023-01-01", "2023-01-02", "2023-02-01", "2024-01-01",
                                                        "2024-01-01"])})
    assert list(touched_pairs(records, pairs)) == [False, True, False, True, False]


def test_risk_class_boundaries_are_exclusive_upper_bounds():
    spec = load_product("diabetes")  # preferred < 0.01 <= standard < 0.03 <= rated < 0.08 <= high < 0.15 <= ...
    p = np.array([0.0, 0.0099, 0.01, 0.029, 0.03, 0.08, 0.15, 0.99])
    assert list(spec.class_index(p)) == [0, 0, 1, 1, 2, 3, 4, 4]


def test_summary_counts_class_moves_and_expected_claims():
    spec = load_product("diabetes")
    before = np.array([0.02, 0.05, 0.05, 0.10, 0.005])
    after = np.array([0.005, 0.02, 0.05, 0.20, 0.005])  # standard->preferred, rated->standard, same, high->uninsurable
    edited = np.array([True, True, True, True, False])
    s = summarise(STEPS, spec, before, after, edited)
    assert (s.members, s.with_source_data, s.changed_class, s.moved_down, s.moved_up) == (5, 4, 3, 2, 1)
    assert s.expected_claims_before == pytest.approx(0.225)
    assert s.expected_claims_after == pytest.approx(0.28)
    assert s.expected_claims_change == pytest.approx(0.055)
    assert s.transitions.loc["rated", "standard"] == 1
    assert s.transitions.loc["rated", "rated"] == 1
    assert int(s.transitions.to_numpy().sum()) == 5


def test_scenarios_in_the_product_yaml_are_validated():
    from chronorisk.model.product import ProductSpec

    raw = load_product("diabetes").model_dump(mode="json")
    raw["scenarios"] = [{"name": "x", "description": "d", "edit": "steps_at_least", "value": 1, "typo": 2}]
    with pytest.raises(ValueError, match="typo"):
        ProductSpec.model_validate(raw)
    raw["scenarios"] = [{"name": "x", "description": "d", "edit": "walk_more", "value": 1}]
    with pytest.raises(ValueError, match="edit"):
        ProductSpec.model_validate(raw)

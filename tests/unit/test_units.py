"""Unit conversions at the contract, checked against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chronorisk.data.units import (
    canonical_labs,
    cm_to_in,
    hba1c_mmol_mol_to_pct,
    hba1c_pct_to_mmol_mol,
    in_to_cm,
    kg_to_lb,
    lb_to_kg,
    mg_dl_to_mmol_l,
    mmol_l_to_mg_dl,
    normalize_unit,
    parse_column,
)


def test_hba1c_48_mmol_mol_is_the_6_5_percent_diagnostic_threshold():
    # 48 / 10.929 + 2.15 = 6.5420
    assert hba1c_mmol_mol_to_pct(48.0) == pytest.approx(6.5420, abs=1e-4)


def test_hba1c_42_mmol_mol_is_6_0_percent():
    # 42 / 10.929 + 2.15 = 5.9930
    assert hba1c_mmol_mol_to_pct(42.0) == pytest.approx(5.9930, abs=1e-4)


def test_hba1c_6_5_percent_is_47_5_mmol_mol():
    # (6.5 - 2.15) * 10.929 = 47.541
    assert hba1c_pct_to_mmol_mol(6.5) == pytest.approx(47.541, abs=1e-3)


def test_glucose_126_mg_dl_is_6_99_mmol_l():
    # 126 / 18.016 = 6.9938
    assert mg_dl_to_mmol_l(126.0, "fasting_glucose") == pytest.approx(6.9938, abs=1e-4)


def test_ldl_cholesterol_100_mg_dl_is_2_59_mmol_l():
    # 100 / 38.67 = 2.5860
    assert mg_dl_to_mmol_l(100.0, "ldl") == pytest.approx(2.5860, abs=1e-4)


def test_triglycerides_150_mg_dl_is_1_69_mmol_l():
    # 150 / 88.57 = 1.6936
    assert mg_dl_to_mmol_l(150.0, "triglycerides") == pytest.approx(1.6936, abs=1e-4)


def test_200_pounds_is_90_718474_kilograms_exactly():
    assert lb_to_kg(200.0) == pytest.approx(90.718474, rel=1e-12)


def test_70_inches_is_177_8_centimetres_exactly():
    assert in_to_cm(70.0) == pytest.approx(177.8, rel=1e-12)


def test_units_match_whatever_their_case_and_surrounding_spaces():
    assert normalize_unit("  MG/dl ") == normalize_unit("mg/dL") == "mg/dl"


def test_lab_values_come_back_in_canonical_units_with_canonical_unit_strings():
    test = pd.Series(["hba1c", "fasting_glucose", "hdl", "egfr"], dtype="str")
    unit = pd.Series(["mmol/mol", " MG/DL", "mmol/l", "ml/min/1.73m2"], dtype="str")
    values, units, ok = canonical_labs(test, np.array([48.0, 126.0, 1.3, 85.0]), unit)
    np.testing.assert_allclose(values, [6.5420, 6.9938, 1.3, 85.0], atol=1e-4)
    assert list(units) == ["%", "mmol/L", "mmol/L", "mL/min/1.73m2"]
    assert ok.all()


def test_a_unit_foreign_to_its_test_is_not_convertible_and_left_untouched():
    test = pd.Series(["hba1c", "egfr", "ldl"], dtype="str")
    unit = pd.Series(["g/L", "mg/dL", None], dtype="str")
    values, units, ok = canonical_labs(test, np.array([50.0, 85.0, 3.0]), unit)
    assert not ok.any()
    np.testing.assert_array_equal(values, [50.0, 85.0, 3.0])
    assert list(units) == ["g/L", "mg/dL", None]


def test_text_numbers_parse_and_unreadable_text_is_flagged_not_nulled_silently():
    parsed, failed = parse_column(pd.Series(["12.5", None, "twelve", " 7 "], dtype="str"), "float")
    np.testing.assert_array_equal(parsed.to_numpy(), [12.5, np.nan, np.nan, 7.0])
    assert failed.tolist() == [False, False, True, False]


def test_a_fractional_step_count_is_flagged_as_unreadable():
    parsed, failed = parse_column(pd.Series([1200.0, 1200.5, np.nan]), "int")
    assert parsed.tolist()[0] == 1200 and parsed.isna().tolist() == [False, True, True]
    assert failed.tolist() == [False, True, False]


def test_iso_dates_parse_to_days_and_impossible_dates_are_flagged():
    parsed, failed = parse_column(pd.Series(["2020-02-29", "2021-02-29", None], dtype="str"), "date")
    assert parsed.iloc[0] == pd.Timestamp("2020-02-29")
    assert parsed.iloc[1:].isna().all()
    assert failed.tolist() == [False, True, False]


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(finite)
def test_pounds_round_trip(x):
    assert kg_to_lb(lb_to_kg(x)) == pytest.approx(x, rel=1e-12, abs=1e-9)


@given(finite)
def test_inches_round_trip(x):
    assert cm_to_in(in_to_cm(x)) == pytest.approx(x, rel=1e-12, abs=1e-9)


@given(finite)
def test_hba1c_round_trip(x):
    assert hba1c_mmol_mol_to_pct(hba1c_pct_to_mmol_mol(x)) == pytest.approx(x, rel=1e-12, abs=1e-9)


@given(finite, st.sampled_from(["fasting_glucose", "total_cholesterol", "ldl", "hdl", "triglycerides"]))
def test_mg_dl_round_trip(x, test):
    assert mg_dl_to_mmol_l(mmol_l_to_mg_dl(x, test), test) == pytest.approx(x, rel=1e-12, abs=1e-9)

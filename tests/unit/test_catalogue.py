"""The one lab-test catalogue and the one enrolment rule: each consumer covers what the catalogue
holds, and who is enrolled on a date is worked out here by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd

from chronorisk.data.contracts import CONTRACTS
from chronorisk.data.enrolment import enrolled_on
from chronorisk.data.units import LAB_CATALOGUE, canonical_labs
from features.labs import TESTS


def test_every_catalogued_lab_test_has_its_features_and_nothing_else_does():
    assert set(TESTS) == set(LAB_CATALOGUE)


def test_a_value_in_its_canonical_unit_comes_back_unchanged_for_every_test():
    names = list(LAB_CATALOGUE)
    lows = np.array([LAB_CATALOGUE[n].plausible[0] for n in names], dtype=float)
    values, units, ok = canonical_labs(pd.Series(names), lows + 0.5,
                                       pd.Series([LAB_CATALOGUE[n].canonical_unit for n in names]))
    assert ok.all()
    np.testing.assert_array_equal(values, lows + 0.5)
    assert list(units) == [LAB_CATALOGUE[n].canonical_unit for n in names]


def test_the_lab_contract_checks_the_range_of_every_catalogued_test_and_only_those():
    rules = {c.label for c in CONTRACTS["lab_results"].checks if c.label.startswith("out_of_range:")}
    assert rules == {f"out_of_range:{test}" for test in LAB_CATALOGUE}


def test_enrolled_on_a_date_means_joined_by_it_and_not_left_before_it():
    t = pd.Timestamp("2022-06-30")
    members = pd.DataFrame({
        "enrollment_start": pd.to_datetime(["2020-01-01", "2022-06-30", "2022-07-01", "2019-01-01", "2019-01-01",
                                            None]),
        "enrollment_end": pd.to_datetime([None, None, None, "2022-06-30", "2022-06-29", None]),
    })
    # open-ended; joined that day; joins the day after; leaves that day; left the day before; no start
    assert enrolled_on(members, t).tolist() == [True, True, False, True, False, False]


def test_rows_that_need_history_count_only_members_who_joined_early_enough():
    t = pd.Timestamp("2022-06-30")
    members = pd.DataFrame({"enrollment_start": pd.to_datetime(["2021-06-30", "2021-07-01"]),
                            "enrollment_end": pd.to_datetime([None, None])})
    assert enrolled_on(members, t, joined_by=t - pd.Timedelta(days=365)).tolist() == [True, False]

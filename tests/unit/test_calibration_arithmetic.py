"""The arithmetic behind the cohort checks, on examples small enough to do by hand."""

from __future__ import annotations

import numpy as np

from chronorisk.synthetic.calibration import incidence_per_1000, km_median


def test_incidence_is_events_per_thousand_person_years():
    # 3 events over 100 + 150 + 250 = 500 person-years -> 6 per 1,000.
    assert incidence_per_1000(np.array([1, 2, 0]), np.array([100.0, 150.0, 250.0])) == 6.0


def test_km_median_without_censoring_is_the_ordinary_median_of_an_odd_sample():
    assert km_median(np.array([5.0, 1.0, 3.0, 4.0, 2.0]), np.ones(5, bool)) == 3.0


def test_km_median_accounts_for_censoring():
    # Times 1 (event), 2 (censored), 3 (event), 4 (event): S(1)=3/4, S(3)=3/4*1/2=3/8 <= 0.5 -> median 3.
    assert km_median(np.array([1.0, 2.0, 3.0, 4.0]), np.array([True, False, True, True])) == 3.0


def test_km_median_is_infinite_when_fewer_than_half_have_the_event():
    assert km_median(np.array([1.0, 2.0, 3.0]), np.array([True, False, False])) == float("inf")

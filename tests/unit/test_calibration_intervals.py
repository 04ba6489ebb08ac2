"""Calibration judged with its interval (training/calibration_intervals.py): the point figures
are the textbook ones, a well-calibrated model's interval contains the ideal, and a model off by
one logit is refused once the rows can show it, but not on a handful of rows."""

from __future__ import annotations

import numpy as np
import pytest

from training.calibration_intervals import CalibrationIntervals, Interval, calibration_intervals, interval_verdict
from training.evaluate import calibration_slope_intercept

SLOPE, OE = (0.8, 1.2), (0.8, 1.25)


def draw(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    eta = -0.9 + rng.normal(size=n) * 1.2
    p = 1 / (1 + np.exp(-eta))
    return (rng.random(n) < p).astype(int), p


def shift(p: np.ndarray, by: float) -> np.ndarray:
    return 1 / (1 + np.exp(-(np.log(p / (1 - p)) + by)))


def test_the_point_figures_are_the_logistic_recalibration_slope_and_observed_over_expected():
    y, p = draw(3000, 1)
    ci = calibration_intervals(y, p, replicates=200, seed=0)
    # lbfgs stops at its default tolerance; Newton converges further: agreement to 1e-4
    assert ci.slope.point == pytest.approx(calibration_slope_intercept(y, p)[0], abs=1e-4)
    assert ci.observed_expected.point == pytest.approx(y.sum() / p.sum(), abs=1e-12)
    assert ci.slope.low < ci.slope.point < ci.slope.high


def test_true_probabilities_are_accepted_and_the_same_shifted_by_one_logit_refused_on_2000_rows():
    accepted = refused = 0
    for seed in range(10):
        y, p = draw(2000, seed)
        accepted += interval_verdict(calibration_intervals(y, p, 500, seed), SLOPE, OE)[0]
        refused += not interval_verdict(calibration_intervals(y, shift(p, 1.0), 500, seed), SLOPE, OE)[0]
    assert accepted >= 9 and refused >= 9


def test_on_forty_rows_the_interval_is_too_wide_to_refuse_a_moderate_miscalibration():
    y, p = draw(40, 5)
    ok, reasons = interval_verdict(calibration_intervals(y, shift(p, 0.3), 500, 5), SLOPE, OE)
    assert ok, reasons
    assert all("40 rows" in r for r in reasons)


def test_only_an_interval_wholly_outside_the_bound_refuses():
    def ci(slope: Interval) -> CalibrationIntervals:
        return CalibrationIntervals(100, 30, 1000, slope, Interval(1.0, 0.9, 1.1))

    assert interval_verdict(ci(Interval(0.7, 0.5, 0.85)), SLOPE, OE)[0]  # overlaps [0.8, 1.2]
    ok, reasons = interval_verdict(ci(Interval(0.6, 0.5, 0.79)), SLOPE, OE)
    assert not ok and "0.600 [0.500, 0.790] lies wholly outside [0.8, 1.2]" in reasons[0]

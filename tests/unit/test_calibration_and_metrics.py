"""Calibration and evaluation metrics against values worked out by hand or by construction."""

from __future__ import annotations

import numpy as np
import pytest

from chronorisk.model.calibration import Calibration, PlattCalibrator
from training.evaluate import calibration_slope_intercept, decile_lift, expected_calibration_error


def test_platt_recovers_the_map_that_generated_the_labels():
    rng = np.random.default_rng(1)
    raw = rng.normal(0, 2, 200_000)
    y = rng.random(raw.size) < 1 / (1 + np.exp(-(0.5 * raw - 1.0)))
    cal = PlattCalibrator().fit(raw, y)
    assert cal.slope_ == pytest.approx(0.5, abs=0.02)
    assert cal.intercept_ == pytest.approx(-1.0, abs=0.02)


def test_the_json_round_trip_gives_the_same_probabilities():
    rng = np.random.default_rng(2)
    raw = rng.normal(size=1000)
    cal = PlattCalibrator().fit(raw, rng.random(1000) < 0.3)
    loaded = Calibration.from_json(cal.to_json())
    assert np.array_equal(loaded.probability(raw), cal.predict_proba(raw)[:, 1])


def test_a_calibration_file_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=r"calibration\.json"):
        Calibration.from_json('{"method": "isotonic", "x": [1]}')


def test_ece_by_hand_on_two_bins():
    # Bin 1: p = 0.1, 0.1 with outcomes 0, 1 -> |0.5 - 0.1| = 0.4; bin 2: p = 0.9, 0.9 with 1, 1 -> 0.1.
    y = np.array([0, 1, 1, 1])
    p = np.array([0.1, 0.1, 0.9, 0.9])
    assert expected_calibration_error(y, p, bins=2) == pytest.approx(0.5 * 0.4 + 0.5 * 0.1)


def test_a_perfectly_calibrated_score_has_slope_one_and_intercept_zero():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.01, 0.5, 300_000)
    y = (rng.random(p.size) < p).astype(int)
    slope, intercept = calibration_slope_intercept(y, p)
    assert slope == pytest.approx(1.0, abs=0.03)
    assert intercept == pytest.approx(0.0, abs=0.05)


def test_decile_lift_puts_the_riskiest_tenth_first():
    y = np.array([0] * 90 + [1] * 10)
    p = np.linspace(0, 1, 100)
    lift = decile_lift(y, p)
    assert lift.loc[0, "observed_rate"] == 1.0 and lift.loc[0, "lift"] == pytest.approx(10.0)
    assert lift["rows"].sum() == 100

"""PSI and the reference bins, against hand computations (decision 18: the reference's deciles plus a
missing bin, 1e-4 for an empty bin)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from chronorisk.model.profile import binned, decile_edges
from monitoring.drift import MonitorConfig, class_mix_drift, distribution_drift, level, load_monitor_config, psi


def test_deciles_of_0_to_99_are_9_19_to_89_and_put_ten_values_in_each_bin():
    reference = binned(np.arange(100, dtype=float))
    assert reference.edges == [9.0, 19.0, 29.0, 39.0, 49.0, 59.0, 69.0, 79.0, 89.0]
    assert reference.shares == pytest.approx([0.1] * 10)
    assert reference.missing == 0.0
    assert (reference.minimum, reference.maximum) == (0.0, 99.0)


def test_psi_on_a_small_example_matches_the_hand_computation():
    reference = binned(np.arange(100, dtype=float))
    # five values in the first bin, three in the last, two missing: every other bin is empty
    current = np.array([5, 5, 5, 5, 5, 95, 95, 95, np.nan, np.nan])
    hand = ((0.5 - 0.1) * math.log(0.5 / 0.1) + (0.3 - 0.1) * math.log(0.3 / 0.1)
            + (0.2 - 1e-4) * math.log(0.2 / 1e-4) + 8 * (1e-4 - 0.1) * math.log(1e-4 / 0.1))
    drift = distribution_drift("x", "feature", reference, current, MonitorConfig())
    assert drift.psi == pytest.approx(hand, rel=1e-12)
    # 0.4 ln 5 + 0.2 ln 3 + 0.1999 ln 2000 + 8 (0.0999 ln 1000) = 0.6438 + 0.2197 + 1.5194 + 5.5207
    assert drift.psi == pytest.approx(7.9036, abs=1e-4)
    assert drift.level == "act"
    assert drift.missing_current == pytest.approx(0.2)


def test_the_same_distribution_has_zero_psi_and_a_shifted_one_does_not():
    reference = binned(np.arange(100, dtype=float))
    same = distribution_drift("x", "feature", reference, np.arange(100, dtype=float), MonitorConfig())
    assert same.psi == pytest.approx(0.0, abs=1e-12)
    shifted = distribution_drift("x", "feature", reference, np.arange(100, dtype=float) + 10, MonitorConfig())
    # bin 0 empties (0.1 -> 1e-4) and the top bin doubles (0.1 -> 0.2)
    hand = (1e-4 - 0.1) * math.log(1e-4 / 0.1) + (0.2 - 0.1) * math.log(2)
    assert shifted.psi == pytest.approx(hand, rel=1e-12)
    assert shifted.out_of_range == pytest.approx(0.10)


def test_a_binary_feature_gets_its_distinct_deciles_only():
    values = np.array([0.0] * 70 + [1.0] * 30)
    assert decile_edges(values) == [0.0, 1.0]
    assert binned(values).shares == pytest.approx([0.7, 0.3, 0.0])


def test_the_class_mix_psi_uses_the_classes_as_bins():
    drift = class_mix_drift({"low": 0.5, "high": 0.5}, pd.Series(["low"] * 3 + ["high"]), MonitorConfig())
    hand = (0.75 - 0.5) * math.log(0.75 / 0.5) + (0.25 - 0.5) * math.log(0.25 / 0.5)
    assert drift.psi == pytest.approx(hand, rel=1e-12)


def test_the_thresholds_give_the_levels_and_must_be_ordered(tmp_path):
    config = MonitorConfig(watch=0.1, act=0.25)
    assert [level(v, config) for v in (0.0999, 0.1, 0.2499, 0.25)] == ["ok", "watch", "watch", "act"]
    assert psi(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.0
    bad = tmp_path / "monitoring.yaml"
    bad.write_text("watch: 0.3\nact: 0.2\n")
    with pytest.raises(ValueError, match=r"watch .* must be below act"):
        load_monitor_config(bad)
    bad.write_text("wacth: 0.1\n")
    with pytest.raises(ValueError, match="wacth: Extra inputs are not permitted"):
        load_monitor_config(bad)

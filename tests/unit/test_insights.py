"""The report's numbers on small arrays worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chronorisk.insights.portfolio import segments
from chronorisk.insights.segments import (
    calibration_by_segment,
    global_importance,
    segment_importance,
    separating_features,
)
from features.registry import default_registry


def test_global_importance_is_mean_absolute_shap_highest_first():
    contrib = np.array([[0.5, -1.0, 0.1], [-0.5, 3.0, 0.1]])  # two features, then the base value
    imp = global_importance(contrib, ["age_years", "q_bmi"], default_registry())
    assert list(imp["feature"]) == ["q_bmi", "age_years"]
    assert list(imp["mean_abs_shap"]) == pytest.approx([2.0, 0.5])
    assert list(imp["mean_shap"]) == pytest.approx([1.0, 0.0])
    assert list(imp["share"]) == pytest.approx([0.8, 0.2])
    assert imp["description"].iloc[1] == "Age at the index date"


def test_segment_importance_averages_within_each_segment():
    contrib = np.array([[1.0, 2.0, 0.0], [3.0, -4.0, 0.0], [-5.0, 0.0, 0.0]])
    table = segment_importance(contrib, ["a", "b"], pd.Series(["F", "F", "M"]), ["b", "a"])
    assert table.loc["a", "F"] == 2.0 and table.loc["b", "F"] == 3.0
    assert table.loc["a", "M"] == 5.0 and table.loc["b", "M"] == 0.0


def test_calibration_by_segment_compares_observed_with_predicted():
    p = np.array([0.1] * 20 + [0.3] * 20)
    y = np.array([1] * 4 + [0] * 16 + [1] * 6 + [0] * 14)
    table = calibration_by_segment(y, p, pd.Series(["a"] * 20 + ["b"] * 20)).set_index("segment")
    assert table.loc["a", "observed_rate"] == pytest.approx(0.2)
    assert table.loc["a", "observed_over_expected"] == pytest.approx(2.0)
    assert table.loc["b", "observed_over_expected"] == pytest.approx(1.0)
    assert (table.loc["b", "rows"], table.loc["b", "events"]) == (20, 6)


def test_separating_features_rank_by_difference_between_classes():
    drivers = pd.DataFrame({"standard": [0.1, -0.2, 0.0], "rated": [0.6, -0.1, -0.05]}, index=["x", "y", "z"])
    sep = separating_features(drivers, "standard", "rated", top=2)
    assert list(sep["feature"]) == ["x", "y"]
    assert list(sep["difference"]) == pytest.approx([0.5, 0.1])


def test_segments_from_features_when_the_raw_columns_are_absent():
    frame = pd.DataFrame({"sex_male": [1.0, 0.0, np.nan], "age_years": [30.0, 50.0, 70.0],
                          "wear_coverage_365d": [0.0, 0.4, np.nan]})
    seg = segments(frame)
    assert list(seg["sex"]) == ["M", "F", "unknown"]
    assert list(seg["age_band"]) == ["25-44", "45-64", "65+"]
    assert list(seg["wearable"]) == ["none", "wearable", "none"]
    assert list(seg["region"]) == ["unknown"] * 3

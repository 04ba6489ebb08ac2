"""Subgroup checks: gaps beyond their bounds are flagged, small subgroups are reported but not judged,
and a flag refuses promotion (decision 10)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chronorisk.model.product import GateConfig, SubgroupBounds, load_product
from training.gate import judge
from training.subgroups import check_subgroups, subgroup_table

BOUNDS = SubgroupBounds(max_auc_gap=0.10, max_calibration_gap=0.03, min_rows=200, min_events=30)


def _row(kind: str, value: str, rows: int, events: int, auc: float, observed: float, predicted: float) -> dict:
    return {"subgroup": kind, "value": value, "rows": rows, "events": events, "roc_auc": auc,
            "observed_rate": observed, "mean_predicted": predicted, "calibration_gap": abs(observed - predicted)}


def test_an_auc_gap_and_a_calibration_gap_beyond_their_bounds_are_flagged():
    table = pd.DataFrame([
        _row("all", "all", 3000, 150, 0.80, 0.05, 0.05),
        _row("sex", "F", 1500, 70, 0.85, 0.047, 0.046),
        _row("sex", "M", 1500, 80, 0.74, 0.053, 0.054),      # 0.11 below F
        _row("age_band", "45-64", 1000, 60, 0.78, 0.06, 0.095),  # predicted 0.035 above observed
        _row("age_band", "65+", 400, 50, 0.77, 0.125, 0.12),
    ])
    check = check_subgroups(table, BOUNDS)
    assert len(check.flags) == 2
    assert any(f.startswith("sex: AUC gap 0.1100 between F (0.8500) and M (0.7400)") for f in check.flags)
    assert any(f.startswith("age_band=45-64: calibration gap 0.0350") for f in check.flags)
    assert not check.ok


def test_gaps_within_bounds_pass_and_small_subgroups_are_not_judged():
    table = pd.DataFrame([
        _row("sex", "F", 1500, 70, 0.82, 0.047, 0.046),
        _row("sex", "M", 1500, 80, 0.75, 0.053, 0.054),      # 0.07 apart: within 0.10
        _row("age_band", "25-44", 900, 5, 0.55, 0.005, 0.09),  # would fail both, but 5 events
    ])
    check = check_subgroups(table, BOUNDS)
    assert check.ok
    assert check.not_judged == ["age_band=25-44 (900 rows, 5 events; needs 200 and 30)"]


def test_the_table_counts_rows_events_and_class_mix_per_subgroup():
    spec = load_product("diabetes")
    frame = pd.DataFrame({"label": [1, 0, 0, 0, 1, 0], "sex": ["F", "F", "F", "M", "M", "M"],
                          "age_years": [30.0, 50.0, 70.0, 30.0, 50.0, 70.0]})
    p = np.array([0.9, 0.001, 0.001, 0.001, 0.9, 0.001])
    table = subgroup_table(frame, p, spec).set_index(["subgroup", "value"])
    top, bottom = spec.risk_classes[-1].name, spec.risk_classes[0].name
    assert table.loc[("sex", "F"), "rows"] == 3 and table.loc[("sex", "F"), "events"] == 1
    assert table.loc[("sex", "F"), f"class_{top}"] == pytest.approx(1 / 3)
    assert table.loc[("sex", "F"), f"class_{bottom}"] == pytest.approx(2 / 3)
    assert table.loc[("age_band", "65+"), "events"] == 0
    assert table.loc[("all", "all"), "observed_rate"] == pytest.approx(2 / 6)


def test_a_subgroup_flag_refuses_promotion_even_of_a_better_model():
    good = {"roc_auc": 0.85, "calibration_slope": 1.0, "ece": 0.01}
    ok, reasons = judge(good, {"roc_auc": 0.80}, 0.70, GateConfig(), False, ["sex: AUC gap 0.2 between F and M"])
    assert not ok
    assert reasons[0] == "subgroup gap: sex: AUC gap 0.2 between F and M"
    ok, _ = judge(good, {"roc_auc": 0.80}, 0.70, GateConfig(), False, [])
    assert ok

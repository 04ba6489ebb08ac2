"""The registry and the feature code agree: every column is described, every entry is computed."""

from __future__ import annotations

import pandas as pd
import pytest

from chronorisk.data.declaration import FeatureSpec
from features.build import compute_features
from features.registry import FeatureRegistry, default_registry


def test_every_produced_column_is_registered_and_every_entry_is_produced(accepted_tables):
    members = accepted_tables["members"]["member_id"].head(50)
    pairs = pd.DataFrame({"member_id": members, "index_date": pd.Timestamp("2021-01-01")})
    produced = [c for c in compute_features(accepted_tables, pairs).columns if c not in ("member_id", "index_date")]
    assert produced == default_registry().names()


def test_each_feature_module_computes_exactly_its_own_specs(accepted_tables):
    from chronorisk.data.table import Table
    from features import consultations, demographics, labs, questionnaire, wearables
    from features.build import GROUPS
    from features.pointintime import Pairs

    pairs = Pairs.of_frame(pd.DataFrame({"member_id": accepted_tables["members"]["member_id"].head(20),
                                         "index_date": pd.Timestamp("2020-06-01")}))
    modules = {"members": demographics, "applications": questionnaire, "consultations": consultations,
               "lab_results": labs, "wearable_daily": wearables}
    for table, fn in GROUPS:
        assert set(fn(Table.of(accepted_tables[table]), pairs)) == {s.name for s in modules[table].SPECS}, table


def test_every_entry_has_a_unit_a_description_and_a_reason_with_the_value():
    for spec in default_registry():
        assert spec.unit and spec.description and spec.source
        assert "{value}" in spec.reason
        assert spec.direction in (-1, 0, 1)


def test_reason_text_reads_in_plain_words():
    spec = default_registry()["steps_mean_90d"]
    assert spec.reason_text(3200.0) == "Average daily steps over the last 90 days: 3,200 steps/day"
    assert spec.reason_text(float("nan")) == "Average daily steps over the last 90 days: not recorded"


def test_a_data_set_can_extend_its_own_registry_without_touching_the_default():
    custom = FeatureSpec("skinfold_mm", "custom", "mm", "Triceps skinfold thickness", 1, "Skinfold: {value}")
    registry = default_registry().extend([custom])
    assert "skinfold_mm" in registry
    assert "skinfold_mm" not in default_registry()


def test_a_feature_cannot_be_registered_twice():
    registry = FeatureRegistry()
    spec = FeatureSpec("x", "t", "u", "d", 0, "x: {value}")
    registry.add(spec)
    with pytest.raises(ValueError, match="already registered"):
        registry.add(spec)


def test_a_direction_outside_minus_one_to_one_is_refused():
    with pytest.raises(ValueError, match="direction"):
        FeatureSpec("x", "t", "u", "d", 2, "x: {value}")


def test_coverage_and_testing_pattern_features_are_marked_as_such():
    registry = default_registry()
    testing = {n for n in registry.names() if n.endswith("_days_since")} | {"lab_days_365d"}
    coverage = {"consultations_365d", "online_share_365d", "days_since_last_consultation",
                "consultation_history_days", "wear_coverage_30d", "wear_coverage_90d", "wear_coverage_365d"}
    assert {n for n in registry.names() if registry[n].kind == "testing_pattern"} == testing
    assert {n for n in registry.names() if registry[n].kind == "coverage"} == coverage
    assert not any(registry.may_be_reason(n) for n in testing | coverage)
    assert registry.may_be_reason("hba1c_pct_latest") and registry.may_be_reason("steps_mean_90d")


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind"):
        FeatureSpec("x", "t", "u", "d", 0, "x: {value}", kind="proxy")

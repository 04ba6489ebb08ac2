"""The gate promotes a better challenger, refuses a worse one, and logs every verdict and rollback."""

from __future__ import annotations

import json

import pytest

from chronorisk.model.product import load_product
from chronorisk.model.registry import CHAMPION, resolve
from training.gate import promote
from training.train import train_product

PEPPER = b"model-test-pepper"
FEW = ["age_years", "sex_male", "q_smoker"]  # a deliberately weak model: three features


def test_the_gate_promotes_a_better_challenger_refuses_a_worse_one_and_logs_both(diabetes_snapshot, mlflow_store,
                                                                                  tmp_path):
    client, root = mlflow_store
    spec = load_product("diabetes")
    weak = spec.model_copy(update={"features": FEW})
    log = tmp_path / "promotions.jsonl"

    v1 = train_product(weak, diabetes_snapshot, artifact_root=root, pepper=PEPPER, seed=7).version
    forced = promote(client, "diabetes", spec.gate, log, to_version=v1)
    assert forced.action == "rollback" and forced.promote
    assert str(resolve(client, "diabetes", CHAMPION).version) == v1

    v2 = train_product(spec, diabetes_snapshot, artifact_root=root, pepper=PEPPER, seed=7).version
    better = promote(client, "diabetes", spec.gate, log)
    assert better.promote, better.explain()
    assert str(resolve(client, "diabetes", CHAMPION).version) == v2
    assert better.compared["challenger"]["roc_auc"] > better.compared["champion"]["roc_auc"] + spec.gate.auc_margin

    train_product(weak, diabetes_snapshot, artifact_root=root, pepper=PEPPER, seed=8)
    worse = promote(client, "diabetes", spec.gate, log)
    assert not worse.promote
    assert any("does not beat the champion" in r for r in worse.reasons)
    assert str(resolve(client, "diabetes", CHAMPION).version) == v2  # unchanged

    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["action"], e["promote"]) for e in entries] == [("rollback", True), ("gate", True), ("gate", False)]
    assert all({"time", "product", "challenger", "champion_before", "reasons"} <= set(e) for e in entries)


def test_promote_to_an_unknown_version_says_so(diabetes_snapshot, mlflow_store, tmp_path):
    client, root = mlflow_store
    spec = load_product("diabetes")
    train_product(spec.model_copy(update={"features": FEW}), diabetes_snapshot, artifact_root=root, pepper=PEPPER)
    with pytest.raises(LookupError, match="no version '99'"):
        promote(client, "diabetes", spec.gate, tmp_path / "log.jsonl", to_version="99")

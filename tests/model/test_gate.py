"""The gate promotes a better challenger, refuses a worse one, and logs every verdict and rollback."""

from __future__ import annotations

import json

import pytest

from chronorisk.model.card import fetch_model_card
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
    forced = promote(client, "diabetes", spec.gate, log, to_version=v1, reason="weak model, by hand",
                     by="a.actuary")
    assert forced.action == "rollback" and forced.promote
    assert str(resolve(client, "diabetes", CHAMPION).version) == v1
    tags = resolve(client, "diabetes", v1).tags
    assert (tags["champion_by"], tags["champion_reason"], tags["champion_how"]) == (
        "a.actuary", "weak model, by hand", "set by hand (was vNone)")
    card = fetch_model_card(client, "diabetes", v1)  # re-logged and hash-checked: it says how and why
    assert "set by hand (was vNone), by a.actuary; reason: weak model, by hand." in card

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
    assert (entries[0]["by"], entries[0]["reason"]) == ("a.actuary", "weak model, by hand")
    assert resolve(client, "diabetes", v2).tags["champion_by"] == "the gate"
    assert all({"time", "product", "challenger", "champion_before", "reasons"} <= set(e) for e in entries)


def test_promote_to_an_unknown_version_says_so(diabetes_snapshot, mlflow_store, tmp_path):
    client, root = mlflow_store
    spec = load_product("diabetes")
    train_product(spec.model_copy(update={"features": FEW}), diabetes_snapshot, artifact_root=root, pepper=PEPPER)
    with pytest.raises(LookupError, match="no version '99'"):
        promote(client, "diabetes", spec.gate, tmp_path / "log.jsonl", to_version="99", reason="r", by="b")


@pytest.mark.parametrize("reason, by", [(None, "a.actuary"), ("  ", "a.actuary"), ("rollback", None)])
def test_setting_the_champion_by_hand_needs_a_reason_and_who(mlflow_store, tmp_path, reason, by):
    client, _ = mlflow_store
    with pytest.raises(ValueError, match="needs a reason and who decided"):
        promote(client, "diabetes", load_product("diabetes").gate, tmp_path / "log.jsonl", to_version="1",
                reason=reason, by=by)
    assert not (tmp_path / "log.jsonl").exists()  # nothing changed, nothing logged


def test_the_cli_refuses_a_rollback_without_a_reason_before_touching_the_registry(tmp_path):
    from typer.testing import CliRunner

    from chronorisk.cli import app

    env = {"CHRONORISK_ENVIRONMENT": "development", "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/none.db"}
    result = CliRunner().invoke(app, ["promote", "--product", "diabetes", "--to", "1"], env=env)
    assert result.exit_code == 2
    assert "needs --reason" in result.output
    assert not (tmp_path / "none.db").exists()  # refused before any connection

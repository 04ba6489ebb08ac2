"""Small imported data (issue 7): repeated stratified k-fold, the model choice made on the folds, test
figures only from held-out rows no choice saw, and custom features carried into the bundle."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from own_data_fixtures import PEPPER
from splits import time_split

from features.pseudonym import member_refs
from serving.scoring import served_from
from training.artifacts import probabilities
from training.evaluate import safe_auc
from training.extract_snapshot import build_extract_snapshot
from training.gate import TEST_SET_ARTIFACT, promote
from training.kfold import holdout
from training.products import load_product
from training.registry import connect, fetch, resolve
from training.snapshot import read_snapshot
from training.train import TrainResult, train_product


@dataclass(frozen=True)
class Trained:
    uri: str
    snapshot: Path
    result: TrainResult
    root: Path


@pytest.fixture(scope="module")
def trained(own_data, tmp_path_factory) -> Trained:
    root = tmp_path_factory.mktemp("byod-model")
    spec = load_product("byod_diabetes")
    snapshot = root / "byod_diabetes.parquet"
    build_extract_snapshot(own_data.imported, spec, snapshot, pepper=PEPPER)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    connect(uri)
    result = train_product(spec, snapshot, artifact_root=root / "mlartifacts", pepper=PEPPER, seed=5)
    return Trained(uri, snapshot, result, root)


def test_small_data_is_cross_validated_and_tested_on_held_out_rows_only(trained):
    client = connect(trained.uri)
    run = client.get_run(trained.result.run_id)
    assert run.data.tags["training_mode"] == "kfold"
    frame = read_snapshot(trained.snapshot)
    spec = load_product("byod_diabetes")
    assert len(frame) < spec.small_data.max_rows
    test_rows = frame[holdout(frame, spec.small_data, seed=5)]
    logged = pd.read_parquet(client.download_artifacts(trained.result.run_id, TEST_SET_ARTIFACT))
    assert sorted(logged["member_ref"]) == sorted(member_refs(test_rows["member_id"], PEPPER))
    assert len(logged) == pytest.approx(0.25 * len(frame), abs=1)
    # the reported test AUC is the registered model's, on exactly those rows
    model = fetch(client, resolve(client, "byod_diabetes", "challenger"))
    auc = safe_auc(logged["label"].to_numpy(), probabilities(model, logged))
    assert run.data.metrics["test_roc_auc"] == pytest.approx(auc, abs=1e-12)


def test_both_models_are_scored_on_the_same_repeated_folds_and_the_better_is_chosen(trained):
    client = connect(trained.uri)
    cv = json.loads(Path(client.download_artifacts(trained.result.run_id,
                                                   "evaluation/cross_validation.json")).read_text())
    assert len(cv["fold_auc"]["lightgbm"]) == len(cv["fold_auc"]["glm"]) == 5 * 3
    means = {m: float(np.nanmean(cv["fold_auc"][m])) for m in ("lightgbm", "glm")}
    assert cv["chosen"] == max(means, key=lambda m: means[m])
    assert client.get_run(trained.result.run_id).data.tags["model_choice"] == cv["chosen"]
    assert client.get_run(trained.result.run_id).data.tags["ceiling"] == "no ceiling available"


def test_the_custom_feature_travels_in_the_hash_checked_bundle_with_its_reason(trained):
    client = connect(trained.uri)
    model = fetch(client, resolve(client, "byod_diabetes", "challenger"))
    assert "skinfold_mm" in model.features
    [custom] = model.custom_features
    assert (custom.name, custom.unit, custom.direction) == ("skinfold_mm", "mm", 1)
    served = served_from("byod_diabetes", "byod_diabetes-risk", "1", model)
    assert served.registry["skinfold_mm"].reason_text(21.5) == "Triceps skinfold: 21.5 mm"


def test_the_gate_compares_with_the_glm_on_the_cross_validated_folds(trained):
    client = connect(trained.uri)
    run = client.get_run(trained.result.run_id)
    verdict = promote(client, "byod_diabetes", load_product("byod_diabetes").gate, trained.root / "promotions.jsonl")
    mine, glm = run.data.metrics["cv_lightgbm_roc_auc_mean"], run.data.metrics["cv_glm_roc_auc_mean"]
    assert verdict.compared["glm_roc_auc"] == glm
    assert any(f"cross-validated AUC {mine:.4f}" in r and f"GLM's {glm:.4f} on the same folds" in r
               for r in verdict.reasons)


def test_a_small_event_product_keeps_its_out_of_time_test_split(own_data, tmp_path):
    from datetime import date

    from training.snapshot import build_snapshot

    spec = time_split(load_product("diabetes"))
    snapshot = tmp_path / "diabetes.parquet"
    build_snapshot(own_data.cohort, spec, snapshot, extract_date=date(2024, 12, 31), pepper=PEPPER, progress=False)
    frame = read_snapshot(snapshot)
    assert len(frame) < spec.small_data.max_rows
    client = connect(f"sqlite:///{tmp_path / 'mlflow.db'}")
    result = train_product(spec, snapshot, artifact_root=tmp_path / "mlartifacts", pepper=PEPPER, seed=5,
                           register_model=False)
    assert client.get_run(result.run_id).data.tags["training_mode"] == "kfold"
    logged = pd.read_parquet(client.download_artifacts(result.run_id, TEST_SET_ARTIFACT))
    test_rows = frame[frame["index_date"] == pd.Timestamp("2021-01-01")]
    assert sorted(logged["member_ref"]) == sorted(member_refs(test_rows["member_id"], PEPPER))

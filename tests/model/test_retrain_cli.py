"""`chronorisk retrain` runs data check, features, training and the gate in one command."""

from __future__ import annotations

import json

from mlflow import MlflowClient
from typer.testing import CliRunner

from chronorisk.cli import app
from chronorisk.model.product import load_product
from training.train import train_product


def test_retrain_goes_from_raw_data_to_a_verdict(model_cohort, tmp_path):
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
           "CHRONORISK_MLFLOW_ARTIFACTS": str(tmp_path / "mlartifacts"),
           "CHRONORISK_FEATURES_DIR": str(tmp_path / "features"),
           "CHRONORISK_PROMOTION_LOG": str(tmp_path / "promotions.jsonl")}
    result = CliRunner().invoke(app, ["retrain", "--product", "diabetes", "--data", str(model_cohort)], env=env)
    assert "validation of" in result.output and "positives" in result.output and "ROC AUC" in result.output
    assert ("PROMOTED" in result.output) == (result.exit_code == 0)
    verdicts = [json.loads(line) for line in (tmp_path / "promotions.jsonl").read_text().splitlines()]
    assert len(verdicts) == 1 and verdicts[0]["product"] == "diabetes"
    assert (tmp_path / "features" / "diabetes.parquet").exists()


def test_tuning_logs_each_trial_as_a_nested_run(diabetes_snapshot, mlflow_store):
    client, root = mlflow_store
    result = train_product(load_product("diabetes"), diabetes_snapshot, artifact_root=root, pepper=b"t", seed=7,
                           tune_trials=2, register_model=False)
    run = client.get_run(result.run_id)
    children = MlflowClient().search_runs([run.info.experiment_id],
                                          filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'")
    assert len(children) == 2
    assert all("validation_roc_auc" in c.data.metrics for c in children)
    assert {"num_leaves", "learning_rate"} <= set(children[0].data.params)

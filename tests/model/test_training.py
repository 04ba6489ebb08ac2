"""A trained diabetes model: reproducible, better than the actuary's baselines, monotone, logged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chronorisk.model.product import load_product
from chronorisk.model.registry import CHALLENGER, fetch, model_name, resolve
from training.snapshot import read_snapshot
from training.train import train_product

PEPPER = b"model-test-pepper"


@pytest.fixture(scope="module")
def spec():
    return load_product("diabetes")


def test_two_runs_with_the_same_seed_give_bit_identical_test_predictions(spec, diabetes_snapshot, mlflow_store,
                                                                        trained):
    _, _, shared = trained
    _, root = mlflow_store
    again = train_product(spec, diabetes_snapshot, artifact_root=root, pepper=PEPPER, seed=7, register_model=False)
    assert again.test_predictions.tobytes() == shared.test_predictions.tobytes()


def test_the_run_is_logged_and_registered_as_challenger(spec, trained):
    client, _, result = trained
    run = client.get_run(result.run_id)
    for key in ("test_roc_auc", "test_pr_auc", "test_brier", "test_ece", "test_calibration_slope",
                "test_glm_roc_auc", "test_findrisc_roc_auc", "explanation_ms_per_row", "ceiling_true_risk_auc"):
        assert key in run.data.metrics, key
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"plots", "evaluation", "product.yaml", "data_fingerprint.json"} <= artifacts
    plots = {a.path for a in client.list_artifacts(result.run_id, "plots")}
    assert plots == {"plots/roc.png", "plots/calibration.png", "plots/shap_summary.png", "plots/importance.png"}
    version = resolve(client, "diabetes", CHALLENGER)
    assert str(version.version) == result.version
    assert {f"sha256.{n}" for n in ("model.txt", "calibration.json", "features.json", "product.yaml")} <= set(
        version.tags)
    loaded = fetch(client, version)
    assert loaded.features == spec.feature_names(loaded.features)


def test_the_model_beats_findrisc_and_is_calibrated(trained):
    _, _, r = trained
    assert r.findrisc_auc is not None
    assert r.test_metrics["roc_auc"] > r.findrisc_auc + 0.03
    assert r.test_metrics["ece"] < 0.03
    assert 0.6 < r.test_metrics["calibration_slope"] < 1.5
    assert r.ceiling["available"] and not r.ceiling["leakage_alarm"]


def test_monotone_directions_hold_for_every_constrained_feature(diabetes_snapshot, trained):
    client, _, result = trained
    model = fetch(client, resolve(client, "diabetes", result.version or ""))
    rows = read_snapshot(diabetes_snapshot).query("split == 'test'").head(300)
    x = rows[model.features].to_numpy(dtype=float)
    base = model.scorer.predict(x, raw_score=True)
    checked = 0
    for j, (name, direction) in enumerate(zip(model.features, model.monotone, strict=True)):
        if direction == 0:
            continue
        bumped = x.copy()
        col = bumped[:, j]
        step = np.nanstd(col) if np.isfinite(np.nanstd(col)) and np.nanstd(col) > 0 else 1.0
        bumped[:, j] = np.where(np.isnan(col), np.nan, col + step)
        moved = model.scorer.predict(bumped, raw_score=True) - base
        assert (direction * moved >= -1e-12).all(), name
        checked += 1
    assert checked >= 30


def test_a_leaking_feature_sets_off_the_alarm(spec, diabetes_snapshot, model_cohort, mlflow_store, tmp_path):
    """Replace one feature by the true future onset: a triumph on paper, a bug in fact."""
    _, root = mlflow_store
    table = pq.read_table(diabetes_snapshot)
    frame = read_snapshot(diabetes_snapshot)
    truth = pd.read_parquet(model_cohort / "_truth" / "members.parquet", columns=["member_id", "diabetes_onset"])
    onset = pd.to_datetime(frame["member_id"].map(truth.set_index("member_id")["diabetes_onset"]))
    future = ((onset >= frame["index_date"]) & (onset < frame["index_date"] + pd.DateOffset(years=3))).fillna(False)
    frame["lab_days_365d"] = future.astype(float)
    leaky = tmp_path / "leaky.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(table.schema.metadata),
                   leaky)
    # Small leaves, so that the ~100 leaking training rows can get a leaf of their own.
    r = train_product(spec, leaky, artifact_root=root, pepper=PEPPER, seed=7, register_model=False,
                      params={"min_child_samples": 10})
    assert r.ceiling["leakage_alarm"], r.ceiling
    assert any(n.startswith("LEAKAGE ALARM") for n in r.notes)


def test_no_raw_member_id_reaches_the_mlflow_store(diabetes_snapshot, trained):
    _, folder, _ = trained
    root = folder / "mlartifacts"
    ids = read_snapshot(diabetes_snapshot, columns=["member_id"])["member_id"].drop_duplicates().sample(
        50, random_state=1).tolist()
    store_files = [p for p in root.rglob("*") if p.is_file()]
    db = folder / "mlflow.db"
    blobs = [p.read_bytes() for p in store_files] + [db.read_bytes()]
    assert store_files and model_name("diabetes")
    for member in ids:
        assert not any(member.encode() in blob for blob in blobs), "a raw member id reached MLflow"


def test_no_test_member_has_a_row_in_training_or_validation(diabetes_snapshot):
    frame = read_snapshot(diabetes_snapshot, columns=["member_id", "split"])
    tested = set(frame.loc[frame["split"].isin(["test", "test_censored"]), "member_id"])
    learned = set(frame.loc[frame["split"].isin(["train", "validation"]), "member_id"])
    assert tested and learned and not tested & learned


def test_partially_followed_rows_are_learned_from_and_both_candidates_judged_on_the_same_rows(diabetes_snapshot,
                                                                                            trained):
    import json

    client, folder, result = trained
    path = client.download_artifacts(result.run_id, "evaluation/candidates.json", str(folder / "dl"))
    logged = json.loads(Path(path).read_text())
    hazard, dropped = logged["candidates"]["discrete_hazard"], logged["candidates"]["drop_censored"]
    frame = read_snapshot(diabetes_snapshot, columns=["split", "complete"])
    train = frame[frame["split"] == "train"]
    assert hazard["train_rows"] == len(train)  # every training row, censored ones included
    assert dropped["dropped_censored_train_rows"] == int((~train["complete"]).sum()) > 0  # counted, not hidden
    assert hazard["rows"] == dropped["rows"] == result.test_metrics["rows"]  # the same complete test rows
    assert logged["chosen"] == max(logged["candidates"], key=lambda n: logged["candidates"][n]["roc_auc"])
    run = client.get_run(result.run_id)
    assert {"candidate_discrete_hazard_test_roc_auc", "candidate_drop_censored_test_roc_auc"} <= set(run.data.metrics)


def test_explanations_add_up_to_the_raw_score_the_calibration_maps(diabetes_snapshot, trained):
    client, _, result = trained
    model = fetch(client, resolve(client, "diabetes", result.version or ""))
    rows = read_snapshot(diabetes_snapshot).query("split == 'test'").head(200)
    x = rows[model.features].to_numpy(dtype=float)
    raw = model.scorer.predict(x, raw_score=True)
    contrib = model.scorer.predict(x, pred_contrib=True)
    assert np.abs(contrib.sum(axis=1) - raw).max() < 1e-9
    p = model.calibration.probability(raw)
    assert ((p > 0) & (p < 1)).all() and np.all(np.diff(p[np.argsort(raw)]) >= 0)  # monotone in the raw score


def test_the_monitor_reference_is_the_latest_training_date(trained):
    client, _, result = trained
    model = fetch(client, resolve(client, "diabetes", result.version or ""))
    assert model.reference.source.endswith("2024-01-01)")

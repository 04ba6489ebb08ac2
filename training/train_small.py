"""`chronorisk train` below the product's `small_data.max_rows`: one run with repeated k-fold.

The same MLflow run, artifacts and registered bundle as a large run (training/train.py), with
the choices made by cross-validation (training/kfold.py) and the test figures from rows no
choice ever saw. The run logs the per-fold AUCs of both models and which one the folds chose.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from training.artifacts import write_bundle
from training.baselines import findrisc_from_features, fit_glm
from training.calibration import PlattCalibrator
from training.evaluate import metrics, safe_auc, true_risk_ceiling
from training.fit import DEFAULT_PARAMS, explanation_cost_ms
from training.kfold import cross_validate, fit_final, holdout, small_params
from training.model_card import log_model_card
from training.products import ProductSpec
from training.registry import experiment, register
from training.train import TrainResult, _input_example, _log_run, reference_profile, registry_of


def train_small(spec: ProductSpec, snapshot: Path, frame: pd.DataFrame, meta: dict[str, Any], features: list[str],
                monotone: list[int], *, artifact_root: Path, pepper: bytes, seed: int = 7,
                params: dict[str, Any] | None = None, register_model: bool = True,
                run_name: str | None = None) -> TrainResult:
    cfg = spec.small_data
    test_mask = holdout(frame, cfg, seed)
    frame = frame.assign(split=np.where(test_mask, "test", "train"))
    dev, test = frame[~test_mask].reset_index(drop=True), frame[test_mask].reset_index(drop=True)
    if dev["label"].sum() < cfg.folds or test["label"].sum() == 0:
        raise ValueError(f"snapshot {snapshot}: {int(dev['label'].sum())} events to develop on and "
                         f"{int(test['label'].sum())} to test on; k-fold needs at least {cfg.folds} and 1")
    x_dev, y_dev = dev[features].to_numpy(dtype=float), dev["label"].to_numpy(dtype=int)
    x_test, y_test = test[features].to_numpy(dtype=float), test["label"].to_numpy(dtype=int)
    chosen = small_params(cfg, {**dict(spec.model_params), **(params or {})})
    notes: list[str] = [f"small data ({len(frame)} rows < {cfg.max_rows}): repeated stratified {cfg.folds}-fold x "
                        f"{cfg.repeats} on {len(dev)} development rows; {len(test)} test rows held out first"]
    exp_id = experiment(f"chronorisk-{spec.name}", artifact_root)
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name or f"{spec.name}-kfold-seed{seed}") as run:
        cv = cross_validate(x_dev, y_dev, dev["member_id"].to_numpy(), features, monotone, cfg, chosen, seed)
        rounds = cv.rounds
        booster = fit_final(x_dev, y_dev, features, monotone, chosen, rounds, seed)
        assert cv.oof_raw is not None
        calibrator = PlattCalibrator().fit(cv.oof_raw, y_dev)  # out-of-fold scores: never in-sample
        p_test = calibrator.predict_proba(np.asarray(booster.predict(x_test, raw_score=True)))[:, 1]
        glm = fit_glm(x_dev, y_dev, seed)
        p_glm = glm.predict_proba(x_test)[:, 1]
        m_model, m_glm = metrics(y_test, p_test), metrics(y_test, p_glm)
        notes.append(f"cross-validated ROC AUC: LightGBM {cv.mean_auc('lightgbm'):.4f}, GLM {cv.mean_auc('glm'):.4f}; "
                     f"the folds choose {cv.chosen}")
        if cv.chosen == "glm":
            notes.append("the GLM won on the folds, but a model bundle holds a LightGBM model only: the registered "
                         "version is LightGBM; treat it with the GLM's figures in mind")
        scores = {"LightGBM (calibrated)": p_test, "GLM": p_glm}
        findrisc_auc = None
        if spec.baseline_score == "findrisc":
            points = findrisc_from_features(test).to_numpy(dtype=float)
            findrisc_auc = safe_auc(y_test, points)
            scores["FINDRISC"] = points
        ceiling = true_risk_ceiling(test, p_test, Path(meta["data_dir"]) if meta.get("data_dir") else None,
                                    spec.name, spec.horizon_years) if spec.outcome == "event" else \
            {"available": False, "note": "no ceiling available: imported data has no generator truth"}
        cost = explanation_cost_ms(booster, x_test[0])
        parts = {"train": dev, "validation": dev.iloc[:0], "test": test}
        _log_run(spec, snapshot, frame, meta, parts, features, monotone, booster, {**chosen, "num_boost_round": rounds},
                 seed, m_model, m_glm, findrisc_auc, ceiling, cost, p_test, scores, pepper, notes)
        summary = cv.summary()
        mlflow.log_metrics({k: v for k, v in summary.items() if isinstance(v, float) and np.isfinite(v)})
        mlflow.set_tags({"training_mode": "kfold", "model_choice": cv.chosen})
        mlflow.log_dict(json.loads(json.dumps(summary, default=float)), "evaluation/cross_validation.json")
        version = None
        if register_model:
            registry = registry_of(meta)
            custom = [registry[f] for f in features if registry[f].source == "custom"]
            with tempfile.TemporaryDirectory(prefix="bundle-") as tmp:
                reference = reference_profile(spec, dev, features, booster, calibrator)
                hashes = write_bundle(Path(tmp), booster, calibrator, features, monotone, spec, reference, custom)
                example = _input_example(dev, features)
                out_example = calibrator.predict_proba(np.asarray(booster.predict(example.to_numpy(), raw_score=True)))
                mv = register(Path(tmp), hashes, example, out_example[:, 1], spec.name,
                              {"product": spec.name, "test_roc_auc": f"{m_model['roc_auc']:.4f}",
                               "training_mode": "kfold", "model_choice": cv.chosen,
                               "leakage_alarm": str(bool(ceiling.get("leakage_alarm"))).lower()})
                version = str(mv.version)
            log_model_card(MlflowClient(), spec.name, version)
        return TrainResult(run.info.run_id, version, m_model, m_glm, findrisc_auc, ceiling, cost,
                           {**DEFAULT_PARAMS, **chosen, "num_boost_round": rounds}, p_test, notes)

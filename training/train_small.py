"""`chronorisk train` below the product's `small_data.max_rows`: one run with repeated k-fold.

The same MLflow run, artifacts and registered bundle as a large run (training/train.py), with
the choices made by cross-validation (training/kfold.py) and the test figures from rows set
aside before any fit. Then, with `small_data.refit_on_all_rows`, the chosen model is refitted
on every labelled row (the development rows and the held-out ones) with the same choices, and
that refit is what is registered: on a few hundred rows a quarter of the data is too much to
leave out of the deployed model. Its test figures stay those of the fit before the refit, kept
as `evaluation/test_predictions.parquet`, which the gate judges instead of rescoring the
refitted model on rows it has seen. The chosen model may be the GLM (a pickle-free JSON bundle).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from chronorisk.data.pseudonym import member_refs
from chronorisk.model.bundle import Scorer, model_kind
from chronorisk.model.calibration import PlattCalibrator
from chronorisk.model.product import ProductSpec
from chronorisk.model.registry import experiment
from training.gate import CROSS_VALIDATION_ARTIFACT, TEST_PREDICTIONS_ARTIFACT
from training.kfold import (
    Candidate,
    CrossValidation,
    candidates,
    cross_validate,
    holdout,
    out_of_fold_raw,
    small_params,
)
from training.registration import register_version
from training.run_record import TrainResult, evaluate, log_run


@dataclass(frozen=True)
class SmallFit:
    """The small-data path's outcome: the test rows' probabilities from the fit on the development
    rows (what the figures and the gate judge), and the deployed model (that fit, or its refit on
    every row) with its calibration."""

    cv: CrossValidation
    chosen: Candidate
    p_test: np.ndarray
    model: Scorer
    calibrator: PlattCalibrator
    refitted: bool


def develop(x: np.ndarray, y: np.ndarray, groups: np.ndarray, features: list[str], monotone: list[int],
            spec: ProductSpec, params: dict[str, Any], seed: int, progress: bool = True
            ) -> tuple[Scorer, PlattCalibrator, CrossValidation, Candidate]:
    """The folds' choice fitted on these rows, with its calibration from out-of-fold scores."""
    cfg = spec.small_data
    holder: dict[str, int] = {}
    pool = candidates(features, monotone, cfg, params, lambda: holder["rounds"])
    cv = cross_validate(x, y, groups, pool, cfg, seed, progress=progress)
    holder["rounds"] = cv.rounds
    chosen = next(c for c in pool if c.name == cv.chosen)
    return *calibrated_fit(chosen, x, y, groups, cfg.folds, seed), cv, chosen


def calibrated_fit(chosen: Candidate, x: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int, seed: int
                   ) -> tuple[Scorer, PlattCalibrator]:
    """The candidate with its choices fixed, fitted on these rows, calibrated on out-of-fold scores
    (never in-sample): the tested fit on the development rows and the refit on every row alike."""
    oof = out_of_fold_raw(x, y, groups, chosen, folds, seed)
    return chosen.fit_fixed(x, y, seed), PlattCalibrator().fit(oof, y)


def fit_small(dev: tuple[np.ndarray, np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray, np.ndarray],
              features: list[str], monotone: list[int], spec: ProductSpec, params: dict[str, Any], seed: int,
              progress: bool = True) -> SmallFit:
    """Choose and fit on the development rows (x, y, groups), score the test rows once, then refit
    the choice on every row when the product says so. `chronorisk train` and the small-data bench
    both take this path, so the bench measures what is deployed."""
    x_dev, y_dev, g_dev = dev
    x_test, y_test, g_test = test
    tested, calibrator, cv, chosen = develop(x_dev, y_dev, g_dev, features, monotone, spec, params, seed, progress)
    p_test = calibrator.predict_proba(np.asarray(tested.predict(x_test, raw_score=True)))[:, 1]
    if not spec.small_data.refit_on_all_rows:
        return SmallFit(cv, chosen, p_test, tested, calibrator, False)
    x_all, y_all, g_all = np.vstack([x_dev, x_test]), np.concatenate([y_dev, y_test]), np.concatenate([g_dev, g_test])
    model, refit_calibrator = calibrated_fit(chosen, x_all, y_all, g_all, spec.small_data.folds, seed)
    return SmallFit(cv, chosen, p_test, model, refit_calibrator, True)


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
    chosen_params = small_params(cfg, {**dict(spec.model_params), **(params or {})})
    notes: list[str] = [f"small data ({len(frame)} rows < {cfg.max_rows}): repeated stratified {cfg.folds}-fold x "
                        f"{cfg.repeats} on {len(dev)} development rows; {len(test)} test rows held out first"]
    exp_id = experiment(f"chronorisk-{spec.name}", artifact_root)
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name or f"{spec.name}-kfold-seed{seed}") as run:
        fitted = fit_small((x_dev, y_dev, dev["member_id"].to_numpy()), (x_test, y_test, test["member_id"].to_numpy()),
                           features, monotone, spec, chosen_params, seed)
        cv, p_test, model, calibrator = fitted.cv, fitted.p_test, fitted.model, fitted.calibrator
        notes.append("cross-validated ROC AUC: " + ", ".join(f"{m} {cv.mean_auc(m):.4f}" for m in cv.order)
                     + f"; the folds choose {cv.chosen} (" + "; ".join(cv.steps) + ")")
        ev = evaluate(spec, meta, model, p_test, test, (x_dev, y_dev), features=features, monotone=monotone,
                      params={**chosen_params, "num_boost_round": cv.rounds}, seed=seed, notes=notes,
                      model_label=f"{cv.chosen} (calibrated)", glm_label="GLM baseline")
        if fitted.refitted:
            notes.append(f"the registered model is the chosen {cv.chosen} refitted on all {len(frame)} labelled rows "
                         f"(development and test); its test figures are the fit's on {len(dev)} development rows, "
                         f"scored once on the {len(test)} held-out rows")
        flags = log_run(spec, snapshot, frame, meta, {"train": dev, "validation": dev.iloc[:0], "test": test}, ev,
                        pepper)
        summary = cv.summary()
        mlflow.log_metrics({k: v for k, v in summary.items() if isinstance(v, float) and np.isfinite(v)})
        mlflow.set_tags({"training_mode": "kfold", "model_choice": cv.chosen,
                         "refit_on_all_rows": str(cfg.refit_on_all_rows).lower()})
        mlflow.log_dict(json.loads(json.dumps(summary, default=float)), CROSS_VALIDATION_ARTIFACT)
        with tempfile.TemporaryDirectory(prefix="pred-") as tmp:
            path = Path(tmp) / Path(TEST_PREDICTIONS_ARTIFACT).name
            pd.DataFrame({"member_ref": member_refs(test["member_id"], pepper), "label": y_test,
                          "probability": p_test}).to_parquet(path, index=False)
            mlflow.log_artifact(str(path), "evaluation")
        version = None
        if register_model:
            version = register_version(spec, model, calibrator, features, monotone, meta, dev, ev.test["roc_auc"],
                                       bool(ev.ceiling.get("leakage_alarm")),
                                       {"training_mode": "kfold", "model_choice": cv.chosen,
                                        "model_family": model_kind(model)})
        return TrainResult.of(run.info.run_id, version, ev, flags)

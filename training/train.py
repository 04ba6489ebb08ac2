"""`chronorisk train`: one product's model, its baselines and its evaluation, as one MLflow run.

Out-of-time split from the product spec; LightGBM with monotone constraints and early stopping
on validation; Platt calibration on validation; GLM and (for diabetes) FINDRISC on the same test
rows; the true-risk ceiling and leakage alarm where the data has generator truth. The run ends
with a registered version aliased `challenger`; `chronorisk promote` decides the rest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from chronorisk.model.calibration import PlattCalibrator
from chronorisk.model.product import ProductSpec
from chronorisk.model.registry import experiment
from training.censored import censored_concordance, choose, fit_drop_censored, fit_hazard, followup_table
from training.evaluate import safe_auc
from training.fit import fit_booster, monotone_vector
from training.registration import register_version, registry_of
from training.run_record import TrainResult, evaluate, log_run
from training.snapshot import read_snapshot, snapshot_meta


def split_parts(spec: ProductSpec, frame: pd.DataFrame) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Train, validation and (complete-follow-up) test rows, and the test members' rows without
    complete follow-up, which only a censoring-aware metric can judge."""
    split = frame["split"]
    complete = frame["complete"].to_numpy(dtype=bool) if "complete" in frame else np.ones(len(frame), dtype=bool)
    parts = {name: frame[(split == name).to_numpy() & (complete | (name != "test"))].reset_index(drop=True)
             for name in ("train", "validation", "test")}
    late = frame[(split == "test_censored").to_numpy() | ((split == "test").to_numpy() & ~complete)]
    return parts, late.reset_index(drop=True)


def log_comparison(comparison: dict[str, Any]) -> None:
    """Both candidates' test figures (same rows), their censoring-aware C and the rows by follow-up."""
    mlflow.log_dict(comparison, "evaluation/candidates.json")
    figures = {f"candidate_{name}_test_{k}": v for name, f in comparison["candidates"].items()
               for k, v in f.items() if k in ("roc_auc", "ece", "calibration_slope", "brier")}
    figures |= {f"candidate_{name}_censored_uno_c": f["uno_c"] for name, f in comparison["censored_test"].items()
                if "uno_c" in f}
    mlflow.log_metrics({k: float(v) for k, v in figures.items() if v is not None and np.isfinite(v)})
    mlflow.set_tags({"model_kind": comparison["chosen"]})


def tune(x_tr: np.ndarray, y_tr: np.ndarray, x_va: np.ndarray, y_va: np.ndarray, features: list[str],
         monotone: list[int], seed: int, trials: int) -> dict[str, Any]:
    """Optuna search on validation AUC; every trial is a nested MLflow run."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    active = mlflow.active_run()
    parent_experiment = active.info.experiment_id if active else None

    def objective(trial: optuna.Trial) -> float:
        params = {
            "num_leaves": trial.suggest_int("num_leaves", 7, 63, log=True),
            "max_depth": trial.suggest_int("max_depth", 3, 8),
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.15, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 20, 400, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 0.1, 50.0, log=True),
        }
        with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True, experiment_id=parent_experiment):
            booster = fit_booster(x_tr, y_tr, x_va, y_va, features, monotone, seed, params)
            auc = safe_auc(y_va, np.asarray(booster.predict(x_va, raw_score=True)))
            mlflow.log_params(params)
            mlflow.log_metrics({"validation_roc_auc": auc, "num_trees": booster.num_trees()})
        return auc

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=trials)
    return dict(study.best_params)


def train_product(spec: ProductSpec, snapshot: Path, *, artifact_root: Path, pepper: bytes, seed: int = 7,
                  params: dict[str, Any] | None = None, tune_trials: int = 0, register_model: bool = True,
                  run_name: str | None = None) -> TrainResult:
    """Train, evaluate and log one run; MLflow's tracking URI must already be set."""
    frame = read_snapshot(snapshot)
    meta: dict[str, Any] = snapshot_meta(snapshot)
    registry = registry_of(meta)
    features = spec.feature_names(list(meta.get("features") or registry.names()))
    if spec.outcome == "extract":  # `features: all` means what the extract fills: no column it never had
        unfilled = [f for f in features if frame[f].nunique(dropna=True) < 2]
        features = [f for f in features if f not in set(unfilled)]
        meta = {**meta, "unfilled_features": unfilled}
    monotone = monotone_vector(features, registry.directions(), dict(spec.monotone_overrides))
    if len(frame) < spec.small_data.max_rows:  # small data: repeated k-fold (training/train_small.py)
        from training.train_small import train_small

        return train_small(spec, snapshot, frame, meta, features, monotone, artifact_root=artifact_root,
                           pepper=pepper, seed=seed, params=params, register_model=register_model, run_name=run_name)
    parts, late = split_parts(spec, frame)
    empty = [name for name, part in parts.items() if part.empty or part["label"].sum() == 0]
    if empty:
        raise ValueError(f"snapshot {snapshot}: no rows or no events in {empty}; cannot train {spec.name}")
    x = {k: v[features].to_numpy(dtype=float) for k, v in parts.items()}
    y = {k: v["label"].to_numpy(dtype=int) for k, v in parts.items()}
    # The GLM and tuning learn the horizon label, so only from rows that observed the whole horizon.
    done = {k: v["complete"].to_numpy(dtype=bool) if "complete" in v else np.ones(len(v), dtype=bool)
            for k, v in parts.items()}
    notes: list[str] = []
    comparison: dict[str, Any] = {}
    exp_id = experiment(f"chronorisk-{spec.name}", artifact_root)
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name or f"{spec.name}-seed{seed}") as run:
        chosen = {**dict(spec.model_params), **(params or {})}
        if tune_trials:
            chosen.update(tune(x["train"][done["train"]], y["train"][done["train"]], x["validation"][
                done["validation"]], y["validation"][done["validation"]], features, monotone, seed, tune_trials))
        if spec.split is not None and spec.split.scheme == "member_and_time":
            horizon = spec.horizon_years
            candidates = [fit_hazard(parts["train"], parts["validation"], features, monotone, seed, chosen, horizon,
                                     spec.recency_half_life_years),
                          fit_drop_censored(parts["train"], parts["validation"], features, monotone, seed, chosen)]
            best, comparison = choose(candidates, x["test"], y["test"])
            booster, calibrator = best.booster, best.calibrator
            comparison["censored_test"] = {c.name: censored_concordance(late, c.proba(late[features].to_numpy(
                dtype=float)), horizon) for c in candidates}
            comparison["rows_by_followup"] = followup_table(frame, horizon)
            notes.append(f"model: {best.name} (test AUC " + ", ".join(
                f"{n} {f['roc_auc']:.4f}" for n, f in comparison["candidates"].items()) + ")")
        else:
            booster = fit_booster(x["train"], y["train"], x["validation"], y["validation"], features, monotone, seed,
                                  chosen)
            calibrator = PlattCalibrator().fit(np.asarray(booster.predict(x["validation"], raw_score=True)),
                                               y["validation"])
        p_test = calibrator.predict_proba(np.asarray(booster.predict(x["test"], raw_score=True)))[:, 1]
        glm_rows = (x["train"][done["train"]], y["train"][done["train"]])
        ev = evaluate(spec, meta, booster, p_test, parts["test"], glm_rows,
                      features=features, monotone=monotone, params=chosen, seed=seed, notes=notes,
                      model_label="LightGBM (calibrated)", glm_label="GLM")
        if ev.glm["roc_auc"] >= ev.test["roc_auc"]:
            notes.append(f"the GLM matches or beats LightGBM on test AUC ({ev.glm['roc_auc']:.4f} vs "
                         f"{ev.test['roc_auc']:.4f}); the gate decides")
        if ev.ceiling.get("leakage_alarm"):
            notes.append(f"LEAKAGE ALARM: AUC against true onset {ev.ceiling['model_auc_vs_true_onset']:.4f} exceeds "
                         f"the true-risk ceiling {ev.ceiling['ceiling_auc']:.4f} by more than 0.01; this is a bug, "
                         "not a triumph, and the gate will refuse this model")
        if comparison:
            log_comparison(comparison)
        flags = log_run(spec, snapshot, frame, meta, parts, ev, pepper)
        version = None
        if register_model:
            version = register_version(spec, booster, calibrator, features, monotone, meta, parts["train"],
                                       ev.test["roc_auc"], bool(ev.ceiling.get("leakage_alarm")), {})
        return TrainResult.of(run.info.run_id, version, ev, flags)

"""Small data: repeated stratified k-fold instead of one validation split.

With a few hundred applicants a single validation split is too noisy to stop, calibrate or
choose on. Here every choice is made inside the folds on the development rows only: early
stopping and Platt calibration on an inner split of each fold's training part, the model choice
(LightGBM or the GLM) on the mean out-of-fold ROC AUC over the same repeated folds. The test rows
(the out-of-time test split, or a stratified hold-out of an extract) are set aside first and
are scored once, by the final model: no test metric on rows the model selected itself on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedShuffleSplit
from tqdm import tqdm

from training.baselines import fit_glm
from training.calibration import PlattCalibrator
from training.evaluate import safe_auc
from training.fit import DEFAULT_PARAMS, DETERMINISM, fit_booster
from training.products import SmallData

MODELS = ("lightgbm", "glm")


@dataclass
class CrossValidation:
    folds: int
    repeats: int
    fold_auc: dict[str, list[float]] = field(default_factory=dict)  # per model, one per fold, same folds
    best_iterations: list[int] = field(default_factory=list)
    rounds: int = 0  # the final model's boosting rounds: the median the folds stopped at
    oof_raw: np.ndarray | None = None  # out-of-fold raw scores of fixed-round models, for calibration
    chosen: str = "lightgbm"

    def mean_auc(self, model: str) -> float:
        return float(np.nanmean(self.fold_auc[model]))

    def summary(self) -> dict[str, Any]:
        return {"folds": self.folds, "repeats": self.repeats, "chosen": self.chosen,
                **{f"cv_{m}_roc_auc_mean": self.mean_auc(m) for m in MODELS},
                **{f"cv_{m}_roc_auc_std": float(np.nanstd(self.fold_auc[m])) for m in MODELS},
                "fold_auc": self.fold_auc, "best_iterations": self.best_iterations, "rounds": self.rounds}


def holdout(frame: pd.DataFrame, config: SmallData, seed: int) -> np.ndarray:
    """The test mask: the out-of-time test split where the snapshot has one, else a stratified
    hold-out of `test_fraction` of the members, drawn before anything is fitted."""
    if (frame["split"] == "test").any():
        return (frame["split"] == "test").to_numpy()
    y = frame["label"].to_numpy(dtype=int)
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=config.test_fraction, random_state=seed)
    _, test_idx = next(splitter.split(np.zeros(len(y)), y))
    mask = np.zeros(len(y), dtype=bool)
    mask[test_idx] = True
    return mask


def small_params(config: SmallData, overrides: dict[str, Any]) -> dict[str, Any]:
    """Strong regularisation for small data: few leaves, large L2, leaves of a few dozen rows."""
    return {"num_leaves": 7, "max_depth": 3, "learning_rate": 0.05, "lambda_l2": config.lambda_l2,
            "min_child_samples": config.min_child_samples, "num_boost_round": 400, "early_stopping_rounds": 30,
            "num_threads": 1, **overrides}  # one thread: on a few thousand rows, threads only wait on each other


def _inner_split(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows to fit on and rows to stop early and calibrate on, inside one fold's training part."""
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=0.25, random_state=seed)
    fit_idx, stop_idx = next(splitter.split(np.zeros(len(y)), y))
    return fit_idx, stop_idx


def cross_validate(x: np.ndarray, y: np.ndarray, groups: np.ndarray, features: list[str], monotone: list[int],
                   config: SmallData, params: dict[str, Any], seed: int, progress: bool = True) -> CrossValidation:
    """LightGBM (stopped and calibrated inside each fold) and the GLM on the same repeated folds."""
    cv = CrossValidation(config.folds, config.repeats, {m: [] for m in MODELS})
    oof = np.full(len(y), np.nan)
    bar = tqdm(total=config.folds * config.repeats, desc="k-fold", unit="fold", disable=not progress)
    for r in range(config.repeats):
        folds = StratifiedGroupKFold(n_splits=config.folds, shuffle=True, random_state=seed + r)
        for k, (tr, va) in enumerate(folds.split(x, y, groups)):
            fit_idx, stop_idx = _inner_split(y[tr], seed + 100 * r + k)
            a, b = tr[fit_idx], tr[stop_idx]
            booster = fit_booster(x[a], y[a], x[b], y[b], features, monotone, seed, params, metric="binary_logloss")
            cal = PlattCalibrator().fit(np.asarray(booster.predict(x[b], raw_score=True)), y[b])
            raw_va = np.asarray(booster.predict(x[va], raw_score=True))
            cv.fold_auc["lightgbm"].append(safe_auc(y[va], cal.predict_proba(raw_va)[:, 1]))
            cv.best_iterations.append(max(1, booster.num_trees()))
            glm = fit_glm(x[tr], y[tr], seed)
            cv.fold_auc["glm"].append(safe_auc(y[va], glm.predict_proba(x[va])[:, 1]))
            bar.update(1)
    bar.close()
    # The final model's calibration: out-of-fold raw scores of models built exactly as the final one
    # (all of each fold's training rows, the same fixed number of rounds), so their scale matches it.
    cv.rounds = int(np.median(cv.best_iterations))
    first = StratifiedGroupKFold(n_splits=config.folds, shuffle=True, random_state=seed)
    for tr, va in first.split(x, y, groups):
        oof[va] = np.asarray(fit_final(x[tr], y[tr], features, monotone, params, cv.rounds, seed).predict(
            x[va], raw_score=True))
    cv.oof_raw = oof
    cv.chosen = "lightgbm" if cv.mean_auc("lightgbm") > cv.mean_auc("glm") else "glm"
    return cv


def fit_final(x: np.ndarray, y: np.ndarray, features: list[str], monotone: list[int], params: dict[str, Any],
              rounds: int, seed: int) -> lgb.Booster:
    """LightGBM on every development row for the median number of rounds the folds stopped at."""
    p = {**DEFAULT_PARAMS, **DETERMINISM, **params}
    p.pop("num_boost_round")
    p.pop("early_stopping_rounds")
    p.update({"seed": seed, "monotone_constraints": monotone})
    data = lgb.Dataset(x, label=y, feature_name=features, free_raw_data=False)
    booster = lgb.train(p, data, num_boost_round=rounds)
    return lgb.Booster(model_str=booster.model_to_string())

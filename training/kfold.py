"""Small data: repeated stratified k-fold instead of one validation split, and a choice that
prefers the simpler model.

With a few hundred applicants a single validation split is too noisy to stop, calibrate or
choose on. Every choice is made inside the folds on the development rows only. The candidates,
simplest first, are the GLM (chronorisk/model/linear.py: imputed, standardised, L2), the GLM with spline
terms (off by default), a strongly regularised LightGBM (stopped early on an inner split of each
fold) and the two averaged (chronorisk/model/blend.py). All are scored on the same repeated folds; a
more complex candidate replaces the simpler choice only when its mean fold-by-fold AUC gain
exceeds the fold-to-fold noise: one standard error of the paired differences, with Nadeau and
Bengio's correction for the overlap of repeated k-fold training sets (Machine Learning 2003),
because the naive error would be far too small. The test rows are set aside before any of this
and scored once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedShuffleSplit
from tqdm import tqdm

from chronorisk.model.blend import Blend
from chronorisk.model.bundle import Scorer
from chronorisk.model.linear import LinearModel
from chronorisk.model.product import MODEL_FAMILIES, SmallData
from training.evaluate import safe_auc
from training.fit import DEFAULT_PARAMS, DETERMINISM, fit_booster
from training.glm import fit_linear


@dataclass(frozen=True)
class Candidate:
    """One model family: how to fit it with its choices made inside the folds (`fit_tuned`, which
    also returns what the final fit reuses) and how to fit it once those choices are fixed."""

    name: str
    fit_tuned: Callable[[np.ndarray, np.ndarray, int], tuple[Scorer, int]]
    fit_fixed: Callable[[np.ndarray, np.ndarray, int], Scorer]


def fold_noise(a: list[float] | np.ndarray, b: list[float] | np.ndarray, folds: int) -> float:
    """One corrected standard error of the mean fold-by-fold AUC difference a - b (Nadeau-Bengio)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return float("inf")
    return float(np.sqrt((1.0 / len(d) + 1.0 / (folds - 1)) * np.var(d, ddof=1)))


@dataclass
class CrossValidation:
    folds: int
    repeats: int
    order: list[str]
    fold_auc: dict[str, list[float]] = field(default_factory=dict)  # per candidate, one per fold, same folds
    best_iterations: list[int] = field(default_factory=list)  # LightGBM's early-stopped rounds per fold
    rounds: int = 0  # the final LightGBM's boosting rounds: the median the folds stopped at
    chosen: str = "glm"
    steps: list[str] = field(default_factory=list)  # each comparison the choice made, in words

    def mean_auc(self, model: str) -> float:
        return float(np.nanmean(self.fold_auc[model]))

    def noise(self, a: str, b: str) -> float:
        return fold_noise(self.fold_auc[a], self.fold_auc[b], self.folds)

    def summary(self) -> dict[str, Any]:
        return {"folds": self.folds, "repeats": self.repeats, "chosen": self.chosen, "order": self.order,
                "choice_steps": self.steps,
                **{f"cv_{m}_roc_auc_mean": self.mean_auc(m) for m in self.order},
                **{f"cv_{m}_roc_auc_std": float(np.nanstd(self.fold_auc[m])) for m in self.order},
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
    """Rows to fit on and rows to stop early on, inside one fold's training part."""
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=0.25, random_state=seed)
    fit_idx, stop_idx = next(splitter.split(np.zeros(len(y)), y))
    return fit_idx, stop_idx


def fit_lightgbm_fixed(x: np.ndarray, y: np.ndarray, features: list[str], monotone: list[int],
                       params: dict[str, Any], rounds: int, seed: int) -> lgb.Booster:
    """LightGBM on the given rows for a fixed number of rounds (the folds' median stopping point)."""
    p = {**DEFAULT_PARAMS, **DETERMINISM, **params}
    p.pop("num_boost_round")
    p.pop("early_stopping_rounds")
    p.update({"seed": seed, "monotone_constraints": monotone})
    data = lgb.Dataset(x, label=y, feature_name=features, free_raw_data=False)
    booster = lgb.train(p, data, num_boost_round=max(1, rounds))
    return lgb.Booster(model_str=booster.model_to_string())


def candidates(features: list[str], monotone: list[int], config: SmallData, params: dict[str, Any],
               rounds: Callable[[], int]) -> list[Candidate]:
    """The candidates, simplest first. `rounds` gives LightGBM's fixed rounds once the folds set them."""

    def glm(knots: int) -> Callable[[np.ndarray, np.ndarray, int], LinearModel]:
        return lambda x, y, seed: fit_linear(x, y, features, c=config.glm_c, spline_knots=knots,
                                             monotone=monotone)

    def lgb_tuned(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[Scorer, int]:
        fit_idx, stop_idx = _inner_split(y, seed)
        booster = fit_booster(x[fit_idx], y[fit_idx], x[stop_idx], y[stop_idx], features, monotone, seed, params,
                              metric="binary_logloss")
        return booster, max(1, booster.num_trees())

    def trees_fixed(x: np.ndarray, y: np.ndarray, seed: int) -> lgb.Booster:
        return fit_lightgbm_fixed(x, y, features, monotone, params, rounds(), seed)

    def blend_tuned(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[Scorer, int]:
        trees, iterations = lgb_tuned(x, y, seed)
        assert isinstance(trees, lgb.Booster)
        return Blend(glm(0)(x, y, seed), trees), iterations

    pool = {"glm": Candidate("glm", lambda x, y, s: (glm(0)(x, y, s), 0), glm(0)),
            "glm_spline": Candidate("glm_spline", lambda x, y, s: (glm(config.spline_knots)(x, y, s), 0),
                                    glm(config.spline_knots)),
            "lightgbm": Candidate("lightgbm", lgb_tuned, trees_fixed),
            "blend": Candidate("blend", blend_tuned, lambda x, y, s: Blend(glm(0)(x, y, s), trees_fixed(x, y, s)))}
    return [pool[name] for name in MODEL_FAMILIES if name in config.candidates]


def cross_validate(x: np.ndarray, y: np.ndarray, groups: np.ndarray, pool: list[Candidate], config: SmallData,
                   seed: int, progress: bool = True) -> CrossValidation:
    """Every candidate on the same repeated folds, then the simplest one the others do not beat."""
    cv = CrossValidation(config.folds, config.repeats, [c.name for c in pool], {c.name: [] for c in pool})
    bar = tqdm(total=config.folds * config.repeats, desc="k-fold", unit="fold", disable=not progress)
    for r in range(config.repeats):
        folds = StratifiedGroupKFold(n_splits=config.folds, shuffle=True, random_state=seed + r)
        for k, (tr, va) in enumerate(folds.split(x, y, groups)):
            for cand in pool:
                model, iterations = cand.fit_tuned(x[tr], y[tr], seed + 100 * r + k)
                cv.fold_auc[cand.name].append(safe_auc(y[va], np.asarray(model.predict(x[va], raw_score=True))))
                if iterations and len(cv.best_iterations) < len(cv.fold_auc[cand.name]):
                    cv.best_iterations.append(iterations)  # one per fold: blend's trees stop as LightGBM's do
            bar.update(1)
    bar.close()
    cv.rounds = int(np.median(cv.best_iterations)) if cv.best_iterations else 0
    chosen = cv.order[0]
    for other in cv.order[1:]:
        gain, noise = cv.mean_auc(other) - cv.mean_auc(chosen), cv.noise(other, chosen)
        wins = bool(gain > noise)
        cv.steps.append(f"{other} vs {chosen}: mean fold AUC gain {gain:+.4f}, noise {noise:.4f}: "
                        f"{'take ' + other if wins else 'keep ' + chosen}")
        chosen = other if wins else chosen
    cv.chosen = chosen
    return cv


def out_of_fold_raw(x: np.ndarray, y: np.ndarray, groups: np.ndarray, candidate: Candidate, folds: int,
                    seed: int) -> np.ndarray:
    """Raw scores of models fitted exactly as the final one (fixed choices, each fold's training
    rows) on the rows they did not see: what the final model's calibration is fitted on."""
    oof = np.full(len(y), np.nan)
    for tr, va in StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, y, groups):
        oof[va] = np.asarray(candidate.fit_fixed(x[tr], y[tr], seed).predict(x[va], raw_score=True))
    return oof

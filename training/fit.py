"""Fitting the LightGBM risk model: monotone constraints from the registry, early stopping on
the out-of-time validation rows, and settings that make two runs with one seed bit-identical.

The defaults favour compact models (few, shallow trees), because an underwriter waits for the
explanation as well as the score: TreeSHAP's cost grows with leaves times depth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np

from chronorisk.model.bundle import Scorer

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "max_depth": 5,
    "min_child_samples": 100,
    "min_sum_hessian_in_leaf": 1.0,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 5.0,
    "max_bin": 127,
    "monotone_constraints_method": "intermediate",  # "advanced" broke constraints here (LightGBM 4.7; tests/model)
    "num_boost_round": 800,
    "early_stopping_rounds": 60,
}
# Fixed for reproducibility: the same seed and data give the same trees, bit for bit.
DETERMINISM: dict[str, Any] = {"deterministic": True, "force_row_wise": True, "num_threads": 2, "verbosity": -1}


def monotone_vector(features: list[str], directions: dict[str, int], overrides: dict[str, int]) -> list[int]:
    """The registry's direction of each feature, unless the product overrides it."""
    return [int(overrides.get(f, directions.get(f, 0))) for f in features]


@dataclass(frozen=True)
class Offsets:
    """Per-row init scores and weights (the person-period model's yearly baseline and exposure)."""

    init_train: np.ndarray
    init_val: np.ndarray
    weight_train: np.ndarray | None = None
    weight_val: np.ndarray | None = None


def fit_booster(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                features: list[str], monotone: list[int], seed: int,
                params: dict[str, Any] | None = None, metric: str = "auc",
                offsets: Offsets | None = None) -> lgb.Booster:
    """Train with early stopping on the validation rows; the booster keeps its best iteration only.
    `metric` is what stopping watches (small folds stop on log loss: AUC on a dozen events is too jumpy).
    With `offsets` the trees learn on top of the given init scores, which the stored model does not
    contain: its raw score is the trees alone (the person-period model's shared f(x))."""
    p = {**DEFAULT_PARAMS, **DETERMINISM, **(params or {})}  # params may set num_threads (small data: 1)
    rounds = int(p.pop("num_boost_round"))
    stop = int(p.pop("early_stopping_rounds"))
    p.update({"seed": seed, "monotone_constraints": monotone, "metric": metric})
    o = offsets
    train = lgb.Dataset(x_train, label=y_train, feature_name=features, free_raw_data=False,
                        init_score=None if o is None else o.init_train, weight=None if o is None else o.weight_train)
    valid = lgb.Dataset(x_val, label=y_val, reference=train, feature_name=features, free_raw_data=False,
                        init_score=None if o is None else o.init_val, weight=None if o is None else o.weight_val)
    booster = lgb.train(p, train, num_boost_round=rounds, valid_sets=[valid], valid_names=["validation"],
                        callbacks=[lgb.early_stopping(stop, verbose=False)])
    best = booster.best_iteration or booster.current_iteration()
    # Re-create from the text of the best iteration only, so the stored model is exactly what scores.
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=best))


def explanation_cost_ms(booster: Scorer, row: np.ndarray, calls: int = 300) -> float:
    """Median wall time (ms) of pred_contrib on one row, after a warm-up: what /score pays."""
    import time

    one = np.asarray(row, dtype=float).reshape(1, -1)
    for _ in range(20):
        booster.predict(one, pred_contrib=True, num_threads=1)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        booster.predict(one, pred_contrib=True, num_threads=1)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000.0)

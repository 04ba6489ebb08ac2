"""`chronorisk bench --name small_data`: does the small-data path hold up against the simple models?

The generating models are fixed here and were written down before any result was seen:
(a) logistic: seven standard-normal predictors, log-odds coefficients 1.0, 0.8, 0.6, 0.4, 0.3,
    0.2, 0.0 and the intercept that gives a 35 % base rate;
(b) the same plus an interaction (1.0 x x1 x x2) and a threshold (+1.5 when x3 > 1), its own
    intercept again giving 35 %.
Each of 20 repetitions draws 300 training rows and 2,000 fresh test rows. The pipeline (the
`chronorisk train` small-data path, training/train_small.py `fit_small`: hold-out, candidates on
repeated folds, the simpler preferred, refit on every row) and the yardsticks, a standardised
logistic regression and a plain LightGBM (library defaults), learn from the same 300 rows and are
scored on the same fresh rows. A sanity run at 20,000 rows checks that (b) is a case where plain
LightGBM beats logistic regression. The gate's calibration rule (training/calibration_intervals.py)
judges the pipeline's deployed candidates on the fresh rows, as they are and shifted by +1 logit.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.optimize import brentq
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from chronorisk.bench.harness import peak_rss, write_result
from chronorisk.model.product import load_product
from training.calibration_intervals import calibration_intervals, interval_verdict
from training.evaluate import safe_auc
from training.kfold import holdout, small_params
from training.train_small import fit_small

COEFS = np.array([1.0, 0.8, 0.6, 0.4, 0.3, 0.2, 0.0])
BASE_RATE = 0.35
TRAIN_ROWS, TEST_ROWS, REPETITIONS, SANITY_ROWS = 300, 2000, 20, 20_000
FEATURES = [f"x{i}" for i in range(1, 8)]


def linear_part(x: np.ndarray, model: str) -> np.ndarray:
    eta = x @ COEFS
    if model == "b":
        eta = eta + 1.0 * x[:, 0] * x[:, 1] + 1.5 * (x[:, 2] > 1.0)
    return eta


def intercept_for(model: str) -> float:
    """The intercept giving a 35 % base rate, on a fixed million-row draw of the predictors."""
    eta = linear_part(np.random.default_rng(20261202).standard_normal((1_000_000, 7)), model)
    return float(brentq(lambda b: float(np.mean(1.0 / (1.0 + np.exp(-(b + eta))))) - BASE_RATE, -10.0, 10.0))


def draw(rng: np.random.Generator, n: int, model: str, b0: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = rng.standard_normal((n, 7))
    p = 1.0 / (1.0 + np.exp(-(b0 + linear_part(x, model))))
    return x, (rng.random(n) < p).astype(int), p


def logistic(x: np.ndarray, y: np.ndarray) -> Any:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, y)


def plain_lightgbm(x: np.ndarray, y: np.ndarray, seed: int) -> lgb.Booster:
    return lgb.train({"objective": "binary", "verbosity": -1, "seed": seed, "num_threads": 1},
                     lgb.Dataset(x, label=y), num_boost_round=100)


def pipeline(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[Callable[[np.ndarray], np.ndarray], str, float]:
    """The small-data path exactly as `chronorisk train` runs it on an extract of these rows."""
    spec = load_product("byod_diabetes")
    frame = pd.DataFrame({"label": y, "split": "train"})
    mask = holdout(frame, spec.small_data, seed)
    ids = np.array([f"R{i:05d}" for i in range(len(y))])
    fit = fit_small((x[~mask], y[~mask], ids[~mask]), (x[mask], y[mask], ids[mask]), FEATURES, [0] * 7, spec,
                    small_params(spec.small_data, {}), seed, progress=False)

    def score(x_new: np.ndarray) -> np.ndarray:
        return np.asarray(fit.calibrator.predict_proba(np.asarray(fit.model.predict(x_new, raw_score=True)))[:, 1])

    return score, fit.cv.chosen, safe_auc(y[mask], fit.p_test)


def shifted(p: np.ndarray, by: float = 1.0) -> np.ndarray:
    logit = np.log(np.clip(p, 1e-12, 1 - 1e-12) / np.clip(1 - p, 1e-12, 1))
    return np.asarray(1.0 / (1.0 + np.exp(-(logit + by))))


def scenario(model: str, log: Callable[[str], None]) -> dict[str, Any]:
    b0 = intercept_for(model)
    gate = load_product("byod_diabetes").gate
    rows: list[dict[str, Any]] = []
    for rep in tqdm(range(REPETITIONS), desc=f"model ({model})", unit="rep"):
        rng = np.random.default_rng(1000 * (model == "b") + rep)
        x, y, _ = draw(rng, TRAIN_ROWS, model, b0)
        x_new, y_new, p_true = draw(rng, TEST_ROWS, model, b0)
        score, chosen, internal_auc = pipeline(x, y, seed=rep)
        p_pipe = score(x_new)
        verdicts = {}
        for name, p in (("pipeline", p_pipe), ("pipeline_shifted", shifted(p_pipe)),
                        ("truth", p_true), ("truth_shifted", shifted(p_true))):
            ok, _ = interval_verdict(calibration_intervals(y_new, p, gate.bootstrap_replicates, seed=rep),
                                     gate.calibration_slope, gate.observed_expected)
            verdicts[name] = ok
        rows.append({"rep": rep, "chosen": chosen, "pipeline": safe_auc(y_new, p_pipe),
                     "logistic": safe_auc(y_new, logistic(x, y).predict_proba(x_new)[:, 1]),
                     "lightgbm": safe_auc(y_new, np.asarray(plain_lightgbm(x, y, rep).predict(x_new))),
                     "truth": safe_auc(y_new, p_true), "internal_test_auc": internal_auc,
                     "base_rate_train": float(y.mean()),
                     **{f"accepted_{k}": v for k, v in verdicts.items()}})
    frame = pd.DataFrame(rows)
    means = {k: float(frame[k].mean()) for k in ("pipeline", "logistic", "lightgbm", "truth", "internal_test_auc")}
    out = {"intercept": b0, "mean_auc": means,
           "pipeline_minus_logistic": means["pipeline"] - means["logistic"],
           "pipeline_minus_best_yardstick": means["pipeline"] - max(means["logistic"], means["lightgbm"]),
           "chosen": frame["chosen"].value_counts().to_dict(),
           "gate_accepts_calibrated": float(frame["accepted_pipeline"].mean()),
           "gate_refuses_shifted": float(1.0 - frame["accepted_pipeline_shifted"].mean()),
           "gate_accepts_true_probabilities": float(frame["accepted_truth"].mean()),
           "gate_refuses_shifted_true_probabilities": float(1.0 - frame["accepted_truth_shifted"].mean()),
           "per_repetition": rows}
    log(f"({model}) mean AUC pipeline {means['pipeline']:.4f}, logistic {means['logistic']:.4f}, "
        f"LightGBM {means['lightgbm']:.4f}, truth {means['truth']:.4f}; chosen {out['chosen']}")
    return out


def sanity(log: Callable[[str], None]) -> dict[str, float]:
    """At 20,000 rows, (b) must be a case where trees win; else the comparison at 300 says nothing."""
    b0 = intercept_for("b")
    rng = np.random.default_rng(77)
    x, y, _ = draw(rng, SANITY_ROWS, "b", b0)
    x_new, y_new, _ = draw(rng, TEST_ROWS * 5, "b", b0)
    out = {"logistic": safe_auc(y_new, logistic(x, y).predict_proba(x_new)[:, 1]),
           "lightgbm": safe_auc(y_new, np.asarray(plain_lightgbm(x, y, 0).predict(x_new)))}
    log(f"sanity (b) at {SANITY_ROWS:,} rows: LightGBM {out['lightgbm']:.4f} vs logistic {out['logistic']:.4f}")
    return out


def bench_small_data(log: Callable[[str], None]) -> Path:
    start = time.perf_counter()
    with peak_rss(os.getpid()) as memory:  # this process and any child: the whole bench runs in-process
        sane = sanity(log)
        a, b = scenario("a", log), scenario("b", log)
    targets = {
        "sanity_lightgbm_beats_logistic_on_b_at_20000": sane["lightgbm"] > sane["logistic"],
        "a_pipeline_at_least_logistic_minus_0.003": a["pipeline_minus_logistic"] >= -0.003,
        "b_pipeline_at_least_best_of_logistic_and_lightgbm": b["pipeline_minus_best_yardstick"] >= 0.0,
        "gate_accepts_at_least_90pct_calibrated":
            min(a["gate_accepts_calibrated"], b["gate_accepts_calibrated"]) >= 0.9,
        "gate_refuses_at_least_90pct_shifted": min(a["gate_refuses_shifted"], b["gate_refuses_shifted"]) >= 0.9,
    }
    return write_result(
        "small_data", "chronorisk bench --name small_data",
        {"train_rows": TRAIN_ROWS, "test_rows": TEST_ROWS, "repetitions": REPETITIONS, "base_rate": BASE_RATE,
         "coefficients": COEFS.tolist(), "model_b_extra": "1.0 * x1 * x2 + 1.5 * (x3 > 1)",
         "pipeline": "training/train_small.py fit_small with the byod_diabetes product's small_data and gate",
         "gate_judged_on": f"the {TEST_ROWS} fresh rows of each repetition"},
        {"sanity_20000_rows_model_b": sane, "model_a": a, "model_b": b, "wall_s": time.perf_counter() - start,
         **memory},
        {"logistic_regression": "StandardScaler + LogisticRegression(C=1) on the same 300 rows",
         "plain_lightgbm": "lightgbm.train defaults, 100 rounds, on the same 300 rows"},
        targets, all(targets.values()))

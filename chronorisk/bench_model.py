"""Model benches: training wall time and memory at 200k members, and the quality run.

Both build (once per bench) a 200,000-member cohort and its diabetes snapshot in a temporary
folder, and log to a bench-only MLflow store (`bench/mlflow-bench.db`), never to the data
scientist's registry.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chronorisk.bench import _cli, repeat_measured, run_measured, write_result

MEMBERS = 200_000
BENCH_STORE = Path("bench/mlflow-bench.db")
LARGE_PARAMS: dict[str, Any] = {"num_leaves": 63, "max_depth": -1, "min_child_samples": 40, "learning_rate": 0.03,
                                "num_boost_round": 3000, "early_stopping_rounds": 100, "lambda_l2": 1.0}


def _cohort_and_snapshot(tmp: Path, log: Callable[[str], None]) -> tuple[Path, Path]:
    data, snapshot = tmp / "cohort", tmp / "diabetes.parquet"
    log(f"generating {MEMBERS:,} members and the diabetes snapshot")
    run_measured(_cli("data", "synth", "--members", str(MEMBERS), "--seed", "7", "--out", str(data), "--workers", "2"))
    run_measured(_cli("features", "build", "--product", "diabetes", "--data", str(data), "--out", str(snapshot)))
    return data, snapshot


def _env(store: Path, artifacts: Path) -> dict[str, str]:
    return {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store.resolve()}",
            "CHRONORISK_MLFLOW_ARTIFACTS": str(artifacts)}


def bench_training(log: Callable[[str], None]) -> Path:
    """`chronorisk train` at 200k members against a bare lightgbm.train on the same matrix."""
    with tempfile.TemporaryDirectory(prefix="bench-training-") as t:
        tmp = Path(t)
        _, snapshot = _cohort_and_snapshot(tmp, log)
        log("training: chronorisk train (3 runs)")
        train = repeat_measured(_cli("train", "--product", "diabetes", "--snapshot", str(snapshot)),
                                env=_env(tmp / "store.db", tmp / "art"))
        bare_code = (
            "import sys, numpy as np, pandas as pd\n"
            "from training.fit import fit_booster, monotone_vector\n"
            "from training.products import load_product\n"
            "from features.registry import default_registry\n"
            "spec = load_product('diabetes'); f = pd.read_parquet(sys.argv[1])\n"
            "feats = spec.feature_names(default_registry().names())\n"
            "tr, va = f[f.split == 'train'], f[f.split == 'validation']\n"
            "mono = monotone_vector(feats, default_registry().directions(), {})\n"
            "fit_booster(tr[feats].to_numpy(float), tr.label.to_numpy(), va[feats].to_numpy(float),"
            " va.label.to_numpy(), feats, mono, 7)\n"
        )
        log("yardstick: the booster alone (3 runs)")
        bare = repeat_measured([sys.executable, "-c", bare_code, str(snapshot)])
        import pyarrow.parquet as pq

        rows = pq.read_metadata(snapshot).num_rows
    ratio = train["wall_s"] / bare["wall_s"]
    return write_result(
        "training", "chronorisk bench --name training",
        {"members": MEMBERS, "snapshot_rows": rows, "index_dates": 4, "product": "diabetes", "workers": 1,
         "lightgbm_threads": 2},
        {"wall_s": train["wall_s"], "peak_rss_mb": train["peak_rss_mb"], "runs": train["runs"],
         "throughput_rows_per_s": rows / train["wall_s"], "ratio_to_bare_booster": ratio},
        {"bare_booster_fit": bare},
        {"note": "no speed target in the issue; recorded for trend", "peak_rss_mb_max": 8192.0},
        train["peak_rss_mb"] <= 8192.0)


def bench_quality(log: Callable[[str], None]) -> Path:
    """The 200k diabetes run: AUC against the ceiling, FINDRISC and the GLM; a larger model beside it."""
    from chronorisk.settings import Settings
    from training.products import load_product
    from training.registry import connect
    from training.train import train_product

    BENCH_STORE.parent.mkdir(parents=True, exist_ok=True)
    connect(f"sqlite:///{BENCH_STORE.resolve()}")
    spec = load_product("diabetes")
    pepper = Settings().id_pepper.get_secret_value().encode()
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as t:
        tmp = Path(t)
        _, snapshot = _cohort_and_snapshot(tmp, log)
        log("quality: default model")
        default = train_product(spec, snapshot, artifact_root=tmp / "art", pepper=pepper, seed=7,
                                register_model=False, run_name="bench-quality-default")
        log("quality: larger model")
        large = train_product(spec, snapshot, artifact_root=tmp / "art", pepper=pepper, seed=7, params=LARGE_PARAMS,
                              register_model=False, run_name="bench-quality-large")
    m, c = default.test_metrics, default.ceiling
    auc = m["roc_auc"]
    ceiling = c.get("ceiling_auc", float("nan"))
    figures = {
        "test_roc_auc": auc, "test_pr_auc": m["pr_auc"], "test_ece": m["ece"],
        "test_calibration_slope": m["calibration_slope"], "test_calibration_intercept": m["calibration_intercept"],
        "glm_roc_auc": default.glm_metrics["roc_auc"], "findrisc_roc_auc": default.findrisc_auc,
        "ceiling_true_risk_auc": ceiling, "model_auc_vs_true_onset": c.get("model_auc_vs_true_onset"),
        "test_auc_over_ceiling": auc / ceiling,
        "auc_vs_true_onset_over_ceiling": c.get("model_auc_vs_true_onset", float("nan")) / ceiling,
        "explanation_ms_per_row": default.explanation_ms,
        "large_model": {"test_roc_auc": large.test_metrics["roc_auc"], "explanation_ms_per_row": large.explanation_ms,
                        "params": LARGE_PARAMS},
        "mlflow_runs": {"default": default.run_id, "large": large.run_id, "store": str(BENCH_STORE)},
    }
    checks = {
        "auc_at_least_0.97_of_ceiling": auc >= 0.97 * ceiling,
        "auc_vs_true_onset_at_least_0.97_of_ceiling": figures["auc_vs_true_onset_over_ceiling"] >= 0.97,
        "auc_at_least_findrisc_plus_0.05": default.findrisc_auc is not None and auc >= default.findrisc_auc + 0.05,
        "auc_above_glm": auc > default.glm_metrics["roc_auc"],
        "ece_at_most_0.01": m["ece"] <= 0.01,
        "explanation_at_most_0.5_ms": default.explanation_ms <= 0.5,
        "within_0.005_of_large_model": large.test_metrics["roc_auc"] - auc <= 0.005,
    }
    figures["checks"] = checks
    return write_result("quality", "chronorisk bench --name quality",
                        {"members": MEMBERS, "product": "diabetes", "seed": 7, "index_dates": 4,
                         "split": "train 2018-2019, validation 2020, test 2021"},
                        figures, {"large_model_roc_auc": large.test_metrics["roc_auc"]},
                        {"auc_over_ceiling_min": 0.97, "auc_minus_findrisc_min": 0.05, "ece_max": 0.01,
                         "explanation_ms_max": 0.5, "auc_gap_to_large_max": 0.005}, all(checks.values()))

"""Model benches: training wall time and memory at 200k members (the quality run: bench_quality.py).

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

from chronorisk.bench.harness import cli, repeat_measured, run_measured, write_result

MEMBERS = int(os.environ.get("CHRONORISK_BENCH_MEMBERS", "200000"))  # smaller only for a smoke run
BENCH_STORE = Path("bench/mlflow-bench.db")
LARGE_PARAMS: dict[str, Any] = {"num_leaves": 63, "max_depth": -1, "min_child_samples": 40, "learning_rate": 0.03,
                                "num_boost_round": 3000, "early_stopping_rounds": 100, "lambda_l2": 1.0}


def _cohort_and_snapshot(tmp: Path, log: Callable[[str], None]) -> tuple[Path, Path]:
    data, snapshot = tmp / "cohort", tmp / "diabetes.parquet"
    log(f"generating {MEMBERS:,} members and the diabetes snapshot")
    run_measured(cli("data", "synth", "--members", str(MEMBERS), "--seed", "7", "--out", str(data), "--workers", "2"))
    run_measured(cli("features", "build", "--product", "diabetes", "--data", str(data), "--out", str(snapshot)))
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
        train = repeat_measured(cli("train", "--product", "diabetes", "--snapshot", str(snapshot)),
                                env=_env(tmp / "store.db", tmp / "art"))
        bare_code = (
            "import sys, numpy as np, pandas as pd\n"
            "from training.fit import fit_booster, monotone_vector\n"
            "from chronorisk.model.product import load_product\n"
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

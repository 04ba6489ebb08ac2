"""The offline scoring bench: `chronorisk score --data` over a 100k cohort against its yardstick (issue 17).

Scoring a book at a date is, at its core, building every enrolled member's features at that date
from their records and predicting once; the yardstick is exactly that, timed in the same run:
`chronorisk features build --index-date` for the same date over the same cohort (no history
window: the scorer reads every record before the date, for the prevalent rule) plus one predict
call over the rows it wrote. What `score` adds beyond it (loading the champion, eligibility,
contract refusals, calibration, the output) may cost at most 30% more. Both run as the CLI in
fresh processes, alternately so that both see the same load on this shared machine; the median of
3 runs each (1 when a score run takes over 5 minutes). The champion comes from a small cohort of
its own (harness.train_champion): the yardstick predicts with the same model, so its size cancels.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from chronorisk.bench.harness import CHAMPION_MEMBERS, LONG_RUN_S, cli, run_measured, train_champion, write_result

MEMBERS = int(os.environ.get("CHRONORISK_BENCH_SCORE_MEMBERS", "100000"))  # smaller only for a smoke run
INDEX_DATE = "2023-01-01"  # the features bench's date: most members enrolled, years of records before it
RUNS = 3
RATIO_MAX = 1.3

# One predict over the feature build's rows, in a fresh process, timed alone (loading is not predicting).
PREDICT_CODE = """
import json, sys, time
import pandas as pd
from chronorisk.model.registry import connect, fetch, resolve
client = connect(sys.argv[1]); model = fetch(client, resolve(client, "diabetes", "champion"))
x = pd.read_parquet(sys.argv[2], columns=model.features)[model.features].to_numpy(dtype=float)
runs = []
for _ in range(int(sys.argv[3])):
    t = time.perf_counter(); model.scorer.predict(x, raw_score=True); runs.append(time.perf_counter() - t)
print(json.dumps({"rows": len(x), "predict_s": runs}))
"""


def _summary(runs: list[dict[str, float]]) -> dict[str, Any]:
    return {"wall_s": statistics.median(r["wall_s"] for r in runs), "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "runs": [round(r["wall_s"], 3) for r in runs]}


def bench_score_data(log: Callable[[str], None]) -> Path:
    with tempfile.TemporaryDirectory(prefix="bench-score-data-") as t:
        tmp = Path(t)
        uri = train_champion(tmp, log)
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "CHRONORISK_ID_PEPPER": "bench-pepper",
               "CHRONORISK_ENVIRONMENT": "development"}
        data, scored, built = tmp / "cohort", tmp / "scored.parquet", tmp / "features.parquet"
        log(f"score_data: generating {MEMBERS:,} members")
        run_measured(cli("data", "synth", "--members", str(MEMBERS), "--seed", "7", "--out", str(data),
                          "--workers", "2"))
        score = cli("score", "--product", "diabetes", "--data", str(data), "--index-date", INDEX_DATE,
                    "--out", str(scored))
        build = cli("features", "build", "--index-date", INDEX_DATE, "--data", str(data), "--out", str(built))
        score_runs: list[dict[str, float]] = []
        build_runs: list[dict[str, float]] = []
        while len(score_runs) < RUNS and (not score_runs or score_runs[0]["wall_s"] <= LONG_RUN_S):
            log(f"score_data: score --data, then features build --index-date {INDEX_DATE} "
                f"(run {len(score_runs) + 1} of up to {RUNS})")
            score_runs.append(run_measured(score, env=env))
            build_runs.append(run_measured(build, env=env))
        log("score_data: one predict over the built rows")
        done = subprocess.run([sys.executable, "-c", PREDICT_CODE, uri, str(built), str(len(score_runs))],
                              env=env, capture_output=True, text=True, check=True)
        predict = json.loads(done.stdout.strip().splitlines()[-1])
        scored_rows = pq.read_metadata(scored).num_rows
        refusals = scored.with_suffix(".refused.parquet")
        refused_rows = pq.read_metadata(refusals).num_rows if refusals.exists() else 0
        built_rows = pq.read_metadata(built).num_rows
    figures: dict[str, Any] = {**_summary(score_runs), "members": MEMBERS, "scored_rows": scored_rows,
                               "refused_rows": refused_rows, "rows_per_s": scored_rows / _summary(score_runs)["wall_s"]}
    predict_s = statistics.median(predict["predict_s"])
    features = {**_summary(build_runs), "rows": built_rows}
    yardstick_s = features["wall_s"] + predict_s
    ratio = figures["wall_s"] / yardstick_s
    checks = {"at_most_1.3x_features_build_plus_predict": ratio <= RATIO_MAX,
              "same_members_as_features_build": scored_rows + refused_rows == built_rows == predict["rows"]}
    figures.update({"ratio_to_yardstick": ratio, "checks": checks})
    return write_result(
        "score_data", "chronorisk bench --name score_data",
        {"members": MEMBERS, "members_env": "CHRONORISK_BENCH_SCORE_MEMBERS", "index_date": INDEX_DATE,
         "history_days": None, "product": "diabetes", "seed": 7, "runs": RUNS, "order": "alternating",
         "champion_members": CHAMPION_MEMBERS, "chunk_members": 20_000},
        {"figures": figures},
        {"wall_s": yardstick_s, "features_build": features,
         "predict": {"wall_s": predict_s, "rows": predict["rows"], "runs": [round(v, 4) for v in predict["predict_s"]],
                     "lightgbm_threads": "model default"}},
        {"score_over_features_build_plus_predict_max": RATIO_MAX}, all(checks.values()))

"""Benches of the data pipeline: the synthetic cohort (`synth`) and the feature build (`features`)."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from chronorisk.bench.harness import cli, repeat_measured, run_measured, tree_sha256, write_result


def _parquet_rewrite_s(src: Path, dst: Path) -> float:
    """Yardstick: read one parquet file and write it again, row group by row group, so memory stays
    flat as the generator's does (the I/O floor of the generator)."""
    code = ("import pyarrow.parquet as pq, sys\n"
            "f = pq.ParquetFile(sys.argv[1])\n"
            "with pq.ParquetWriter(sys.argv[2], f.schema_arrow, compression='zstd') as w:\n"
            "    for i in range(f.num_row_groups):\n"
            "        w.write_table(f.read_row_group(i))\n")
    return run_measured([sys.executable, "-c", code, str(src), str(dst)])["wall_s"]


def bench_synth(log: Callable[[str], None]) -> Path:
    """Generator throughput and peak memory for 100k and 1M members, with a determinism check."""
    sizes = {"100k": 100_000, "1M": 1_000_000}
    figures: dict[str, Any] = {}
    yard: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        for label, members in sizes.items():
            out = Path(tmp) / label
            cmd = cli("data", "synth", "--members", str(members), "--seed", "7", "--out", str(out), "--workers", "2")
            log(f"synth {label}: {' '.join(cmd[1:])}")
            m = repeat_measured(cmd)
            manifest = json.loads((out / "_manifest.json").read_text())
            rows = sum(v for k, v in manifest["rows"].items() if not k.startswith("_"))
            figures[label] = {**m, "members_per_s": members / m["wall_s"], "raw_rows": rows,
                              "raw_rows_per_s": rows / m["wall_s"]}
            yard[f"{label}_parquet_rewrite_wearables_s"] = _parquet_rewrite_s(
                out / "wearable_daily.parquet", Path(tmp) / "rewrite.parquet")
            if label == "100k":
                first = tree_sha256(out)
                again = Path(tmp) / "again"
                run_measured(cli("data", "synth", "--members", str(members), "--seed", "7", "--out", str(again),
                                  "--workers", "1"))
                figures[label]["same_bytes_with_1_worker"] = first == tree_sha256(again)
                shutil.rmtree(again)
            shutil.rmtree(out)
    targets = {"100k_wall_s_max": 60.0, "1M_peak_rss_mb_max": 8192.0, "same_bytes": True}
    passed = (figures["100k"]["wall_s"] <= 60.0 and figures["1M"]["peak_rss_mb"] <= 8192.0
              and figures["100k"]["same_bytes_with_1_worker"])
    return write_result("synth", "chronorisk bench --name synth",
                        {"members": list(sizes.values()), "seed": 7, "workers": 2,
                         "years_of_history": "enrolment 2016-2018 to 2024-12-31"},
                        {"figures": figures}, yard, targets, passed)


def _wearable_rows_between(path: Path, since: str, until: str) -> int:

    dataset = ds.dataset(path, format="parquet")
    return dataset.count_rows(filter=(ds.field("date") >= pa_date(since)) & (ds.field("date") < pa_date(until)))


def pa_date(text: str) -> Any:
    from datetime import date as _date


    return pa.scalar(_date.fromisoformat(text), pa.date32())


def _duckdb_steps_mean_s(path: Path, index_date: str) -> dict[str, Any]:
    """Yardstick: one DuckDB query for the 90-day step mean per member over the same parquet."""
    code = (
        "import duckdb, sys; con = duckdb.connect(); "
        "con.execute(\"SET threads TO 2\"); "
        "n = con.execute(\"SELECT count(*) FROM (SELECT member_id, avg(steps) FROM read_parquet(?) "
        "WHERE date >= DATE '" + index_date + "' - INTERVAL 90 DAY AND date < DATE '" + index_date + "' "
        "GROUP BY member_id)\", [sys.argv[1]]).fetchone()[0]; print(n)"
    )
    return repeat_measured([sys.executable, "-c", code, str(path)])


def bench_features(log: Callable[[str], None]) -> Path:
    """Feature build at one index date over two years of history, 100k and 1M members (+ a 200k snapshot)."""
    index_date, since, history = "2023-01-01", "2021-01-01", 730
    figures: dict[str, Any] = {}
    yard: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-features-") as tmp:
        for label, members in {"100k": 100_000, "1M": 1_000_000}.items():
            data = Path(tmp) / f"cohort-{label}"
            log(f"features {label}: generating {members:,} members")
            run_measured(cli("data", "synth", "--members", str(members), "--seed", "7", "--out", str(data),
                              "--workers", "2"))
            out = Path(tmp) / f"features-{label}.parquet"
            cmd = cli("features", "build", "--index-date", index_date, "--history-days", str(history),
                       "--data", str(data), "--out", str(out))
            log(f"features {label}: {' '.join(cmd[1:])}")
            m = repeat_measured(cmd)
            rows = pq.read_metadata(out).num_rows
            wear = _wearable_rows_between(data / "wearable_daily.parquet", since, index_date)
            figures[label] = {**m, "members": members, "feature_rows": rows, "members_per_s": members / m["wall_s"],
                              "wearable_rows_in_history": wear, "wearable_rows_per_s": wear / m["wall_s"]}
            yard[f"{label}_duckdb_steps_mean_90d"] = _duckdb_steps_mean_s(data / "wearable_daily.parquet", index_date)
            shutil.rmtree(data)
        data = Path(tmp) / "cohort-200k"
        log("snapshot 200k: generating 200,000 members")
        run_measured(cli("data", "synth", "--members", "200000", "--seed", "7", "--out", str(data), "--workers", "2"))
        out = Path(tmp) / "diabetes.parquet"
        snap = run_measured(cli("features", "build", "--product", "diabetes", "--data", str(data), "--out", str(out)))

        figures["snapshot_200k_all_index_dates"] = {**snap, "rows": pq.read_metadata(out).num_rows, "runs": 1}
    one_m = figures["1M"]
    targets = {"1M_wall_s_max": 600.0, "1M_peak_rss_mb_max": 8192.0}
    passed = one_m["wall_s"] <= 600.0 and one_m["peak_rss_mb"] <= 8192.0
    for label in ("100k", "1M"):
        figures[label]["ratio_to_duckdb"] = figures[label]["wall_s"] / yard[f"{label}_duckdb_steps_mean_90d"]["wall_s"]
    return write_result("features", "chronorisk bench --name features",
                        {"members": [100_000, 1_000_000], "index_date": index_date, "history_days": history,
                         "index_dates_per_member": 1, "chunk_members": 20_000, "workers": 1,
                         "snapshot": {"members": 200_000, "product": "diabetes", "index_dates": 4}},
                        {"figures": figures}, yard, targets, passed)

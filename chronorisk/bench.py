"""`chronorisk bench`: benchmarks that write their figures to bench/results/<name>.json.

Each measured command runs in a fresh subprocess whose whole process tree's RSS is summed and
sampled at 10 Hz; wall time is the median of 3 runs (1 for runs over 5 minutes). A speed target
is a ratio to a yardstick timed in the same run, because this machine is shared and noisy. A
missed target is recorded as a failure, never hidden, and the command still exits 0.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

RESULTS = Path("bench/results")
LONG_RUN_S = 300.0


def machine() -> dict[str, Any]:
    def version(pkg: str) -> str | None:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    return {
        "nproc": os.cpu_count(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        **{pkg: version(pkg) for pkg in ("lightgbm", "pandas", "pyarrow", "bentoml", "mlflow", "numpy")},
    }


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def tree_rss(proc: psutil.Process) -> int:
    """Summed RSS in bytes of a process and its descendants (what is gone counts 0)."""
    rss = 0
    with contextlib.suppress(psutil.Error):
        for p in [proc, *proc.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                rss += p.memory_info().rss
    return rss


@contextlib.contextmanager
def peak_rss(pid: int, interval: float = 0.1) -> Iterator[dict[str, float]]:
    """Sample a running process tree (a server) at 10 Hz for the block; `peak_rss_mb` is set on exit."""
    out = {"peak_rss_mb": 0.0}
    proc, stop, peak = psutil.Process(pid), threading.Event(), [0]

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], tree_rss(proc))
            stop.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield out
    finally:
        stop.set()
        sampler.join()
        out["peak_rss_mb"] = peak[0] / 2**20


def run_measured(cmd: list[str], *, env: dict[str, str] | None = None, interval: float = 0.1) -> dict[str, float]:
    """Run cmd once in a fresh subprocess; wall seconds and peak summed RSS of its process tree.

    stderr goes to a file, not a pipe: nobody reads a pipe while the command runs, and a full
    pipe (progress bars) would block the command forever.
    """
    with tempfile.TemporaryFile() as err_file:
        start = time.perf_counter()
        proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err_file, env=env)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, tree_rss(proc))
            time.sleep(interval)
        wall = time.perf_counter() - start
        err_file.seek(0)
        stderr = err_file.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark command failed ({proc.returncode}): {' '.join(cmd)}\n{stderr[-2000:]}")
    return {"wall_s": wall, "peak_rss_mb": peak / 2**20}


def repeat_measured(cmd: list[str], runs: int = 3, **kw: Any) -> dict[str, Any]:
    """Median wall time of up to `runs` runs (a single run when the first exceeds 5 minutes)."""
    results = [run_measured(cmd, **kw)]
    while len(results) < runs and results[0]["wall_s"] <= LONG_RUN_S:
        results.append(run_measured(cmd, **kw))
    return {
        "wall_s": statistics.median(r["wall_s"] for r in results),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
        "runs": [round(r["wall_s"], 3) for r in results],
    }


def tree_sha256(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def write_result(name: str, command: str, parameters: dict[str, Any], figures: dict[str, Any],
                 yardstick: dict[str, Any], targets: dict[str, Any], passed: bool) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "name": name, "command": command, "git_commit": git_commit(),
        "utc_time": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
        "parameters": parameters, **figures, "yardstick": yardstick, "target": targets, "pass": passed,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "chronorisk.cli", *args]


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
            cmd = _cli("data", "synth", "--members", str(members), "--seed", "7", "--out", str(out), "--workers", "2")
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
                run_measured(_cli("data", "synth", "--members", str(members), "--seed", "7", "--out", str(again),
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
            run_measured(_cli("data", "synth", "--members", str(members), "--seed", "7", "--out", str(data),
                              "--workers", "2"))
            out = Path(tmp) / f"features-{label}.parquet"
            cmd = _cli("features", "build", "--index-date", index_date, "--history-days", str(history),
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
        run_measured(_cli("data", "synth", "--members", "200000", "--seed", "7", "--out", str(data), "--workers", "2"))
        out = Path(tmp) / "diabetes.parquet"
        snap = run_measured(_cli("features", "build", "--product", "diabetes", "--data", str(data), "--out", str(out)))

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


def _training(log: Callable[[str], None]) -> Path:
    from chronorisk.bench_model import bench_training

    return bench_training(log)


def _quality(log: Callable[[str], None]) -> Path:
    from chronorisk.bench_quality import bench_quality

    return bench_quality(log)


def _serving(log: Callable[[str], None]) -> Path:
    from chronorisk.bench_serving import bench_serving

    return bench_serving(log)


def _report(log: Callable[[str], None]) -> Path:
    from chronorisk.bench_report import bench_report

    return bench_report(log)


def _small_data(log: Callable[[str], None]) -> Path:
    from chronorisk.bench_small_data import bench_small_data

    return bench_small_data(log)


BENCHES: dict[str, Callable[[Callable[[str], None]], Path]] = {
    "synth": bench_synth, "features": bench_features, "training": _training, "quality": _quality,
    "serving": _serving, "report": _report, "small_data": _small_data}

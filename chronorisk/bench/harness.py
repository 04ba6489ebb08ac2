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
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

RESULTS = Path("bench/results")
LONG_RUN_S = 300.0
CHAMPION_MEMBERS = 5000


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


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "chronorisk.cli", *args]


def train_champion(tmp: Path, log: Callable[[str], None], members: int = CHAMPION_MEMBERS) -> str:
    """Train a diabetes champion on a small cohort into a temporary MLflow store under tmp; its URI.

    The scoring benches need a champion of the real kind, not a good one: their yardsticks run the
    same model, so its size cancels out of every ratio, and a small cohort keeps the set-up short.
    The data scientist's registry is never touched.
    """
    from chronorisk.model.product import load_product
    from chronorisk.model.registry import connect
    from chronorisk.synthetic.cohort import load_profile, synthesize
    from training.gate import promote
    from training.snapshot import build_snapshot
    from training.train import train_product

    log(f"training a champion on {members:,} members")
    profile = load_profile(Path("experiments/profiles/default.yaml"))
    synthesize(members=members, seed=7, out_dir=tmp / "champion-cohort", profile=profile, workers=2)
    spec = load_product("diabetes")
    build_snapshot(tmp / "champion-cohort", spec, tmp / "snap.parquet", extract_date=date(2024, 12, 31),
                   pepper=b"bench", progress=False)
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    client = connect(uri)
    version = train_product(spec, tmp / "snap.parquet", artifact_root=tmp / "art", pepper=b"bench").version
    promote(client, "diabetes", spec.gate, tmp / "promotions.jsonl", to_version=version, reason="bench champion",
            by="bench")
    return uri

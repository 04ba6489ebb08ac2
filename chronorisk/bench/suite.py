"""The suite of benches `chronorisk bench --name` runs, by name; each module imports only the harness."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from chronorisk.bench.model import bench_training
from chronorisk.bench.pipeline import bench_features, bench_synth
from chronorisk.bench.quality import bench_quality
from chronorisk.bench.report import bench_report
from chronorisk.bench.score_data import bench_score_data
from chronorisk.bench.serving import bench_serving
from chronorisk.bench.small_data import bench_small_data

BENCHES: dict[str, Callable[[Callable[[str], None]], Path]] = {
    "synth": bench_synth, "features": bench_features, "training": bench_training, "quality": bench_quality,
    "serving": bench_serving, "score_data": bench_score_data, "report": bench_report, "small_data": bench_small_data}

"""Training snapshots: labelled (member, index date) rows of one product with their features.

The chunk function here is what every runner calls, so a snapshot built in-process, on Dask or
for one member is the same function of the same tables.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import pandas as pd

from chronorisk.model.product import ProductSpec
from features.build import compute_features
from features.pointintime import KEY
from features.registry import FeatureRegistry, default_registry
from features.runners import RunTotals, parquet_meta, run_chunked, stream_to_parquet
from training.labels import label_index_dates

SEGMENT_COLUMNS = ["sex", "region"]


class SnapshotChunk:
    """A picklable chunk function: (accepted tables) -> (labelled feature rows, label counts)."""

    def __init__(self, spec: ProductSpec, registry: FeatureRegistry, extract_date: date) -> None:
        self.spec, self.registry, self.extract_date = spec, registry, extract_date

    def __call__(self, tables: Mapping[str, pd.DataFrame]) -> tuple[pd.DataFrame, dict[str, int]]:
        labelled = label_index_dates(tables, self.spec, self.extract_date)
        features = compute_features(tables, labelled.rows[KEY], self.registry)
        segments = tables["members"][["member_id", *SEGMENT_COLUMNS]]
        rows = labelled.rows.merge(segments, on="member_id", how="left").merge(features, on=KEY, how="left")
        rows = rows.sort_values(KEY, kind="stable", ignore_index=True)
        rows["sex"] = rows["sex"].astype("str")
        rows["region"] = rows["region"].astype("str")
        return rows, labelled.counts.as_dict()


def build_snapshot(data_dir: Path, spec: ProductSpec, out: Path, *, extract_date: date, pepper: bytes,
                   chunk_members: int = 20_000, registry: FeatureRegistry | None = None,
                   progress: bool = True) -> RunTotals:
    """Stream the product's snapshot to `out` (parquet), chunk by chunk; return the totals."""
    registry = registry or default_registry()
    totals = RunTotals()
    frames = run_chunked(data_dir, SnapshotChunk(spec, registry, extract_date), chunk_members=chunk_members,
                         extract_date=extract_date, pepper=pepper, totals=totals, progress=progress)
    stream_to_parquet(frames, out, _meta(data_dir, spec, registry, extract_date))
    return totals


def _meta(data_dir: Path, spec: ProductSpec, registry: FeatureRegistry, extract_date: date) -> dict[str, object]:
    """What a snapshot was built from: the trainer finds truth (if any) and the source through it."""
    manifest = Path(data_dir) / "_manifest.json"
    source = json.loads(manifest.read_text()) if manifest.exists() else {}
    return {"product": spec.name, "features": registry.names(), "extract_date": extract_date.isoformat(),
            "data_dir": str(Path(data_dir).resolve()),
            "source": {k: source[k] for k in ("generator", "generator_version", "seed", "members", "profile")
                       if k in source}}


def snapshot_meta(path: Path) -> dict[str, object]:
    return parquet_meta(path)


def build_snapshot_dask(data_dir: Path, spec: ProductSpec, out: Path, *, extract_date: date, pepper: bytes,
                        chunk_members: int = 20_000, workers: int = 2,
                        registry: FeatureRegistry | None = None) -> RunTotals:
    """The same snapshot as `build_snapshot`, with member chunks as Dask partitions."""
    from features.distributed import run_dask

    registry = registry or default_registry()
    frame, totals = run_dask(data_dir, SnapshotChunk(spec, registry, extract_date), chunk_members=chunk_members,
                             extract_date=extract_date, pepper=pepper, workers=workers)
    stream_to_parquet([frame], out, _meta(data_dir, spec, registry, extract_date))
    return totals


def read_snapshot(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """A snapshot with its dates back at second resolution (parquet stores them in milliseconds)."""
    frame = pd.read_parquet(path, columns=columns)
    for col in ("index_date", "event_date", "followup_end"):
        if col in frame:
            frame[col] = frame[col].astype("datetime64[s]")
    return frame

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
import pyarrow as pa
import pyarrow.parquet as pq

from features.build import compute_features
from features.pointintime import KEY
from features.registry import FeatureRegistry, default_registry
from features.runners import RunTotals, run_chunked
from training.labels import label_index_dates
from training.products import ProductSpec

SEGMENT_COLUMNS = ["sex", "region"]
SNAPSHOT_META_KEY = b"chronorisk.snapshot"


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
    fn = SnapshotChunk(spec, registry, extract_date)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".partial")
    writer: pq.ParquetWriter | None = None
    totals = RunTotals()
    try:
        for frame in run_chunked(data_dir, fn, chunk_members=chunk_members, extract_date=extract_date,
                                 pepper=pepper, totals=totals, progress=progress):
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                meta = {SNAPSHOT_META_KEY: json.dumps({"product": spec.name, "features": registry.names(),
                                                       "extract_date": extract_date.isoformat()}).encode()}
                writer = pq.ParquetWriter(tmp, table.schema.with_metadata({**(table.schema.metadata or {}), **meta}),
                                          compression="zstd")
            writer.write_table(table.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise ValueError(f"{data_dir}: no members to build a snapshot from")
    tmp.replace(out)  # a killed build never leaves a half snapshot under the real name
    return totals


def snapshot_meta(path: Path) -> dict[str, object]:
    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta.get(SNAPSHOT_META_KEY, b"{}"))


def build_snapshot_dask(data_dir: Path, spec: ProductSpec, out: Path, *, extract_date: date, pepper: bytes,
                        chunk_members: int = 20_000, workers: int = 2,
                        registry: FeatureRegistry | None = None) -> RunTotals:
    """The same snapshot as `build_snapshot`, with member chunks as Dask partitions."""
    from features.distributed import run_dask

    registry = registry or default_registry()
    frame, totals = run_dask(data_dir, SnapshotChunk(spec, registry, extract_date), chunk_members=chunk_members,
                             extract_date=extract_date, pepper=pepper, workers=workers)
    out.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = {SNAPSHOT_META_KEY: json.dumps({"product": spec.name, "features": registry.names(),
                                           "extract_date": extract_date.isoformat()}).encode()}
    pq.write_table(table.replace_schema_metadata({**(table.schema.metadata or {}), **meta}), out, compression="zstd")
    return totals


def read_snapshot(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """A snapshot with its dates back at second resolution (parquet stores them in milliseconds)."""
    frame = pd.read_parquet(path, columns=columns)
    for col in ("index_date", "event_date"):
        if col in frame:
            frame[col] = frame[col].astype("datetime64[s]")
    return frame

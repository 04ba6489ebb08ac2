"""Runners: which members' raw tables the one feature function sees at a time.

The in-process runner walks contiguous ranges of sorted member ids, reading each range with a
row-group filter (the generator writes tables in member order, so a range touches only its own
row groups), validating it through the contracts and handing it to a chunk function. The Dask
runner (`features/distributed.py`) sends the very same `process_chunk` calls to workers.
Memory is bounded by one chunk, not by the cohort.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from tqdm import tqdm

from features.contracts import TABLES, ContractError, validate_tables
from features.units import read_raw_file

# A chunk function turns one chunk's accepted tables into rows and counts to add up.
ChunkFn = Callable[[Mapping[str, pd.DataFrame]], tuple[pd.DataFrame, dict[str, int]]]
DATE_COLUMNS = {"consultations": "date", "lab_results": "date", "wearable_daily": "date"}


@dataclass(frozen=True)
class MemberChunk:
    number: int
    first: str  # inclusive range of member ids, in string order
    last: str
    members: int


@dataclass
class RunTotals:
    """Counts added up over chunks: the contracts' (per table) and the chunk function's."""

    read: dict[str, int] = field(default_factory=dict)
    accepted: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    member_rejected: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, report_tables: Mapping[str, object], counts: Mapping[str, int]) -> None:
        for name, t in report_tables.items():
            for attr in ("read", "accepted", "rejected", "member_rejected"):
                bucket: dict[str, int] = getattr(self, attr)
                bucket[name] = bucket.get(name, 0) + int(getattr(t, attr))
        for key, value in counts.items():
            self.counts[key] = self.counts.get(key, 0) + int(value)


def table_path(data_dir: Path, name: str) -> Path | None:
    for suffix in (".parquet", ".csv"):
        path = Path(data_dir) / f"{name}{suffix}"
        if path.exists():
            return path
    return None


def member_chunks(data_dir: Path, chunk_members: int) -> list[MemberChunk]:
    """Contiguous ranges of the sorted member ids, `chunk_members` members each."""
    if chunk_members < 1:
        raise ValueError(f"chunk_members must be at least 1, got {chunk_members}")
    path = table_path(data_dir, "members")
    if path is None:
        raise ContractError("members", "*", "missing_table", 0,
                            message=f"members: required table missing (members.parquet or .csv in {data_dir})")
    if path.suffix == ".parquet":
        ids = pq.read_table(path, columns=["member_id"]).column("member_id")
    else:
        ids = pa.chunked_array([pa.array(read_raw_file(path)["member_id"].astype("str"), pa.string())])
    ids = pc.unique(pc.drop_null(ids.cast(pa.string())))
    ordered = pc.sort_indices(ids)
    values = pc.take(ids, ordered).to_pylist()
    return [MemberChunk(i // chunk_members, values[i], values[min(i + chunk_members, len(values)) - 1],
                        min(chunk_members, len(values) - i)) for i in range(0, len(values), chunk_members)]


def read_chunk(data_dir: Path, chunk: MemberChunk, *, since: date | None = None) -> dict[str, pd.DataFrame]:
    """Raw rows of one member range (and, with `since`, only records dated on or after it)."""
    frames: dict[str, pd.DataFrame] = {}
    for name in TABLES:
        path = table_path(data_dir, name)
        if path is None:
            continue
        if path.suffix == ".csv":
            # CSV has no row-group statistics: read whole, then keep the range (fine for small extracts).
            raw = read_raw_file(path)
            ids = raw["member_id"].astype("str")
            frames[name] = raw[((ids >= chunk.first) & (ids <= chunk.last)).to_numpy(dtype=bool, na_value=False)]
            continue
        field_ = ds.field("member_id")
        expr = (field_ >= chunk.first) & (field_ <= chunk.last)
        if since is not None and name in DATE_COLUMNS:
            expr = expr & (ds.field(DATE_COLUMNS[name]) >= pa.scalar(since, pa.date32()))
        table = ds.dataset(path, format="parquet").to_table(filter=expr)
        frames[name] = read_raw_file(path, table=table)
    return frames


def process_chunk(data_dir: Path, chunk: MemberChunk, fn: ChunkFn, *, extract_date: date, pepper: bytes,
                  since: date | None = None) -> tuple[pd.DataFrame, Mapping[str, object], dict[str, int]]:
    """Read, validate and run `fn` on one chunk: the unit of work of every runner."""
    accepted, _, report = validate_tables(read_chunk(data_dir, chunk, since=since), extract_date=extract_date,
                                          pepper=pepper)
    frame, counts = fn(accepted)
    return frame, report.tables, counts


def run_chunked(data_dir: Path, fn: ChunkFn, *, chunk_members: int, extract_date: date, pepper: bytes,
                totals: RunTotals, since: date | None = None, progress: bool = True) -> Iterator[pd.DataFrame]:
    """Yield each chunk's rows in member order, adding its counts to `totals` as it goes."""
    chunks = member_chunks(data_dir, chunk_members)
    bar = tqdm(total=sum(c.members for c in chunks), unit="member", desc="features", disable=not progress)
    try:
        for chunk in chunks:
            frame, tables, counts = process_chunk(data_dir, chunk, fn, extract_date=extract_date, pepper=pepper,
                                                  since=since)
            totals.add(tables, counts)
            bar.update(chunk.members)
            yield frame
    finally:
        bar.close()

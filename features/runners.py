"""Runners: which members' raw tables the one feature function sees at a time.

The in-process runner walks contiguous ranges of sorted member ids, reading each range with a
row-group filter (the generator writes tables in member order, so a range touches only its own
row groups), validating it through the contracts and handing it to a chunk function. The Dask
runner (`features/distributed.py`) sends the very same `process_chunk` calls to workers.
Memory is bounded by one chunk, not by the cohort.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from tqdm import tqdm

from chronorisk.data.contracts import TABLES, ContractError, refused_members, validate_tables
from chronorisk.data.enrolment import enrolled_on
from chronorisk.data.pseudonym import member_refs
from chronorisk.data.units import read_raw_file
from features.build import compute_features
from features.registry import FeatureRegistry, default_registry

# A chunk function turns one chunk's accepted tables into rows and counts to add up.
ChunkFn = Callable[[Mapping[str, pd.DataFrame]], tuple[pd.DataFrame, dict[str, int]]]
META_KEY = b"chronorisk.features"
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


def read_chunk(data_dir: Path, chunk: MemberChunk, *, since: date | None = None,
               until: date | None = None) -> dict[str, pd.DataFrame]:
    """Raw rows of one member range; with `since`/`until`, only records dated in [since, until).

    The date window is a read optimisation only: the feature code applies its own point-in-time
    rule to whatever it is given.
    """
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
        if until is not None and name in DATE_COLUMNS:
            expr = expr & (ds.field(DATE_COLUMNS[name]) < pa.scalar(until, pa.date32()))
        table = ds.dataset(path, format="parquet").to_table(filter=expr)
        frames[name] = read_raw_file(path, table=table)
    return frames


def process_chunk(data_dir: Path, chunk: MemberChunk, fn: ChunkFn, *, extract_date: date, pepper: bytes,
                  since: date | None = None, until: date | None = None,
                  ) -> tuple[pd.DataFrame, Mapping[str, object], dict[str, int]]:
    """Read, validate and run `fn` on one chunk: the unit of work of every runner."""
    accepted, rejected, report = validate_tables(read_chunk(data_dir, chunk, since=since, until=until),
                                                 extract_date=extract_date, pepper=pepper)
    frame, counts = fn(accepted)
    if getattr(fn, "refuses_rejected", False):
        frame = with_contract_reasons(frame, rejected, pepper)
    return frame, report.tables, counts


CONTRACT_REASONS = "contract_reasons"  # the messages of the rules a member's rows break; "" when none


def with_contract_reasons(frame: pd.DataFrame, rejected: Mapping[str, pd.DataFrame], pepper: bytes) -> pd.DataFrame:
    """frame (one row per member_id) with CONTRACT_REASONS: what a scorer refuses the member for,
    as the service refuses an applicant whose records break a rule (chronorisk.data.contracts.rule_message)."""
    refused = refused_members(rejected)
    reasons = np.full(len(frame), "", dtype=object)
    if refused:  # the HMAC of every member only when some row was quarantined
        refs = member_refs(frame["member_id"].astype("str"), pepper).to_numpy(dtype=object)
        reasons = np.array([refused.get(r, "") for r in refs], dtype=object)
    return frame.assign(**{CONTRACT_REASONS: pd.array(reasons, dtype="str")})


def run_chunked(data_dir: Path, fn: ChunkFn, *, chunk_members: int, extract_date: date, pepper: bytes,
                totals: RunTotals, since: date | None = None, until: date | None = None,
                progress: bool = True) -> Iterator[pd.DataFrame]:
    """Yield each chunk's rows in member order, adding its counts to `totals` as it goes."""
    chunks = member_chunks(data_dir, chunk_members)
    bar = tqdm(total=sum(c.members for c in chunks), unit="member", desc="features", disable=not progress)
    try:
        for chunk in chunks:
            frame, tables, counts = process_chunk(data_dir, chunk, fn, extract_date=extract_date, pepper=pepper,
                                                  since=since, until=until)
            totals.add(tables, counts)
            bar.update(chunk.members)
            yield frame
    finally:
        bar.close()


def stream_to_parquet(frames: Iterable[pd.DataFrame], out: Path, meta: Mapping[str, object]) -> int:
    """Write frames one by one to `out` with `meta` (JSON) in the file's metadata; rows written.

    Writes to `<out>.partial` and renames at the end, so a killed run never leaves a file that
    looks complete.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".partial")
    writer: pq.ParquetWriter | None = None
    rows = 0
    try:
        for frame in frames:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                schema = table.schema.with_metadata({**(table.schema.metadata or {}),
                                                     META_KEY: json.dumps(meta).encode()})
                writer = pq.ParquetWriter(tmp, schema, compression="zstd")
            writer.write_table(table.cast(writer.schema))
            rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise ValueError(f"nothing to write to {out}: no members")
    tmp.replace(out)
    return rows


def parquet_meta(path: Path) -> dict[str, object]:
    """The JSON metadata `stream_to_parquet` stored in a file."""
    meta = pq.read_schema(path).metadata or {}
    return dict(json.loads(meta.get(META_KEY, b"{}")))


class FeaturesAtDate:
    """A chunk function: features of every member enrolled on one index date (batch scoring).
    With `refuses_rejected`, each row also says which contract rules the member's records break."""

    def __init__(self, index_date: date, registry: FeatureRegistry, refuses_rejected: bool = False) -> None:
        self.index_date, self.registry, self.refuses_rejected = index_date, registry, refuses_rejected

    def __call__(self, tables: Mapping[str, pd.DataFrame]) -> tuple[pd.DataFrame, dict[str, int]]:
        members = tables["members"]
        t = pd.Timestamp(self.index_date)
        enrolled = enrolled_on(members, t)
        pairs = pd.DataFrame({"member_id": members.loc[enrolled, "member_id"], "index_date": t})
        features = compute_features(tables, pairs, self.registry)
        return features.sort_values(["member_id"], kind="stable", ignore_index=True), {
            "members": len(members), "enrolled": int(enrolled.sum()), "rows": len(features)}


def build_features_at(data_dir: Path, index_date: date, out: Path, *, extract_date: date, pepper: bytes,
                      history_days: int | None = None, chunk_members: int = 20_000,
                      registry: FeatureRegistry | None = None, progress: bool = True,
                      contract_reasons: bool = False) -> RunTotals:
    """Features of every member enrolled on `index_date`, from records in the `history_days` before it;
    with `contract_reasons`, a CONTRACT_REASONS column for the scorer (batch scoring refuses those members)."""
    registry = registry or default_registry()
    since = None if history_days is None else index_date - timedelta(days=history_days)
    totals = RunTotals()
    frames = run_chunked(data_dir, FeaturesAtDate(index_date, registry, contract_reasons),
                         chunk_members=chunk_members,
                         extract_date=extract_date, pepper=pepper, totals=totals, since=since, until=index_date,
                         progress=progress)
    stream_to_parquet(frames, out, {"index_date": index_date.isoformat(), "history_days": history_days,
                                    "features": registry.names(), "extract_date": extract_date.isoformat()})
    return totals

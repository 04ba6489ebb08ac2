"""One entry point for a product's training snapshot, whatever the data: a raw folder labelled by
the product's event definition (in process, or with member chunks as Dask partitions), or an
imported extract labelled by its own outcome column. `chronorisk features build`, `retrain` and
`demo` all come through here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from chronorisk.data.contracts import extract_date_of
from chronorisk.model.product import ProductSpec
from features.runners import RunTotals
from training.extract_snapshot import build_extract_snapshot
from training.snapshot import build_snapshot, build_snapshot_dask

Runner = Literal["chunked", "dask"]
RUNNERS: tuple[Runner, ...] = ("chunked", "dask")


def build_training_snapshot(data_dir: Path, spec: ProductSpec, out: Path, *, pepper: bytes, chunk_members: int,
                            runner: str, workers: int, warn: Callable[[str], None] | None = None) -> RunTotals:
    """Write the product's snapshot parquet to `out` and return its counts. An extract is read
    whole (it is one row per applicant, small by nature), so the runner applies to raw folders.
    The defaults are the CLI's (chronorisk/cli/defaults.py), which keeps its help free of imports."""
    if runner not in RUNNERS:
        raise ValueError(f"runner must be one of {', '.join(RUNNERS)}")
    if spec.outcome == "extract":
        return RunTotals(counts=build_extract_snapshot(data_dir, spec, out, pepper=pepper, warn=warn))
    extract = extract_date_of(data_dir)
    if runner == "chunked":
        return build_snapshot(data_dir, spec, out, extract_date=extract, pepper=pepper, chunk_members=chunk_members)
    return build_snapshot_dask(data_dir, spec, out, extract_date=extract, pepper=pepper, chunk_members=chunk_members,
                               workers=workers)

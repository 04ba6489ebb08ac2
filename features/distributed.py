"""The Dask runner: the same `process_chunk` calls as the in-process runner, as Dask tasks.

Each task is one partition of members (a contiguous id range), so a worker reads only that
range and no shuffle is needed; results come back in member order. Needs the `distributed`
extra; a local cluster is started when no client is given (tests use one; a real cluster is a
scheduler address away).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from features.runners import ChunkFn, RunTotals, member_chunks, process_chunk


def run_dask(data_dir: Path, fn: ChunkFn, *, chunk_members: int, extract_date: date, pepper: bytes,
             workers: int = 2, client: Any = None, since: date | None = None) -> tuple[pd.DataFrame, RunTotals]:
    """Run `fn` over every member chunk on Dask; rows in member order, with the totals."""
    try:
        import dask
        from dask.distributed import Client, LocalCluster
    except ImportError as err:  # pragma: no cover - depends on the install
        raise RuntimeError("the Dask runner needs the distributed extra: "
                           "pip install 'chronorisk[distributed]'") from err

    chunks = member_chunks(data_dir, chunk_members)
    own = None
    if client is None:
        own = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(own)
    try:
        tasks = [dask.delayed(process_chunk)(Path(data_dir), c, fn, extract_date=extract_date, pepper=pepper,
                                             since=since) for c in chunks]
        results = dask.compute(*tasks)
    finally:
        if own is not None:
            client.close()
            own.close()
    totals = RunTotals()
    for _, tables, counts in results:
        totals.add(tables, counts)
    return pd.concat([frame for frame, _, _ in results], ignore_index=True), totals

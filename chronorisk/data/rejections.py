"""What happens to rows that fail a contract: the report that counts them, the `_rejected/`
files that hold them, and the error strict mode raises instead (chronorisk/data/quarantine.py
judges the rows; chronorisk/data/contracts.py calls both)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, model_validator

from chronorisk.data.pseudonym import member_refs
from chronorisk.data.table import Table

__all__ = ["QUARANTINE_DIR", "ContractError", "TableReport", "ValidationReport", "quarantine_frame",
           "write_quarantine"]

QUARANTINE_DIR = "_rejected"


class ContractError(Exception):
    """A contract broken in strict mode, or a table that cannot be validated at all."""

    def __init__(self, table: str, column: str, rule: str, count: int, detail: str = "",
                 message: str | None = None) -> None:
        self.table, self.column, self.rule, self.count, self.detail = table, column, rule, count, detail
        rows = "1 row breaks" if count == 1 else f"{count} rows break"
        super().__init__(message or f"{table}.{column}: {rows} {rule}" + (f" ({detail})" if detail else ""))


class TableReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str | None = None
    read: int
    accepted: int
    rejected: int
    member_rejected: int
    by_rule: dict[str, int]
    quarantine: str | None = None

    @model_validator(mode="after")
    def _every_row_is_accounted_for(self) -> TableReport:
        if self.read != self.accepted + self.rejected + self.member_rejected:
            raise ValueError(f"read {self.read} != accepted {self.accepted} + rejected {self.rejected} + "
                             f"member_rejected {self.member_rejected}")
        return self

    def count(self, rule: str) -> int:
        """Rows breaking a rule: an exact label (`out_of_range:steps`) or a rule name (`out_of_range`)."""
        return sum(n for label, n in self.by_rule.items() if label == rule or label.startswith(rule + ":"))


class ValidationReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    extract_date: date
    tables: dict[str, TableReport]

    @property
    def clean(self) -> bool:
        return all(t.rejected == 0 and t.member_rejected == 0 for t in self.tables.values())


def quarantine_frame(raw: Table, allowed: Iterable[str], positions: np.ndarray, why: np.ndarray,
                     pepper: bytes) -> pd.DataFrame:
    """Rejected rows as read (so the owner sees the offending value), pseudonymised and stripped.

    Only contract columns (and their accepted unit alternatives) survive; member_id becomes
    member_ref; `source_row` is the 0-based row number in the source.
    """
    allowed = frozenset(allowed)
    if len(positions):
        return _quarantine_frame(raw, allowed, positions, why, pepper)
    # no rejections, the usual case: the frame depends only on the raw table's columns and dtypes, and
    # building it costs ~1.5 ms of pandas calls, so it is built once per shape and copied (~0.05 ms)
    key = (tuple((name, values.dtype) for name, values in raw.items()), allowed)
    empty = _NO_REJECTIONS.get(key)
    if empty is None:
        if len(_NO_REJECTIONS) >= 256:
            _NO_REJECTIONS.clear()
        empty = _NO_REJECTIONS[key] = _quarantine_frame(raw, allowed, positions, why, pepper)
    return empty.copy(deep=False)  # under copy-on-write a shallow copy is independent of the template


_NO_REJECTIONS: dict[tuple, pd.DataFrame] = {}


def _quarantine_frame(raw: Table, allowed: frozenset[str], positions: np.ndarray, why: np.ndarray,
                      pepper: bytes) -> pd.DataFrame:
    # python objects (CSV text, mixed values) as their text, as read: they cannot go to parquet as they are, and
    # a frame built from them would infer a type instead (datetimes, say)
    out = pd.DataFrame({c: pd.Series(v[positions], dtype=object).astype("str") if _objects(v) else v[positions]
                        for c, v in raw.items() if c in allowed}, index=pd.RangeIndex(len(positions)))
    if "member_id" in out.columns:
        at = out.columns.get_loc("member_id")
        refs = member_refs(out.pop("member_id"), pepper)
        out.insert(int(at), "member_ref", refs.to_numpy())  # type: ignore[arg-type]  # get_loc is an int here
    out["reason"] = pd.Series(why, dtype="str")
    out["source_row"] = positions.astype(np.int64)
    return out


def _objects(values: object) -> bool:
    return isinstance(values, np.ndarray) and values.dtype == object


def write_quarantine(data_dir: Path, rejected: Mapping[str, pd.DataFrame],
                     tables: Iterable[str]) -> dict[str, Path]:
    """Write `<table>.parquet` under DIR/_rejected/ for tables with rejections; remove stale files.

    A stale file from an earlier run would blame rows that are now fine, so every table's file
    is removed first and only this run's rejections are written.
    """
    qdir = Path(data_dir) / QUARANTINE_DIR
    for table in tables:
        (qdir / f"{table}.parquet").unlink(missing_ok=True)
    written: dict[str, Path] = {}
    for table, frame in rejected.items():
        if len(frame) == 0:
            continue
        qdir.mkdir(parents=True, exist_ok=True)
        path = qdir / f"{table}.parquet"
        # uncompressed: an auditor can grep the bytes for canary identifiers and trust a miss
        pq.write_table(pyarrow.Table.from_pandas(frame, preserve_index=False), path, compression="none")
        written[table] = path
    return written

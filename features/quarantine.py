"""Judging raw rows against a table contract, and what happens to the rows that fail: the report
that counts them, the `_rejected/` files that hold them, and the error strict mode raises instead.

`features.contracts` says what the rules are; this module applies them. Parsing, unit
conversion and the cross-table rules (duplicates, unknown or rejected members, records before
birth) are vectorised numpy/pandas; the per-column and per-row value checks (nulls, ranges, code
lists, ICD-10/ATC patterns, future dates, dbp < sbp, age at enrolment) are the table's pandera
schema, run lazily once, its failure cases mapped back to row positions through the RangeIndex.
Measured on a 5M-row wearable_daily frame, pandera's lazy run costs ~0.05 µs/row clean and
~0.2 µs/row with 10% of rows failing (the failure-case frame grows with failures), so it stays
on the hot path; the whole validation is ~0.2 µs/row clean, ~0.45 µs/row at 10% bad rows.
Nothing loops per row in Python; per-rejected-row work (reasons, HMAC per distinct member)
only touches the rejected rows.

A data owner must be able to find and fix every rejected row (its reasons and its row number in
the source file) without the quarantine becoming a second copy of personal data: member ids are
replaced by keyed pseudonyms and columns outside the contract (names, phone numbers) are dropped.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, model_validator

from features.pseudonym import member_refs
from features.units import (
    CANONICAL_DTYPES,
    CANONICAL_UNIT,
    UNIT_ALTERNATIVES,
    canonical_labs,
    missing_column,
    parse_column,
    parse_float,
)

if TYPE_CHECKING:
    from features.contracts import TableContract

__all__ = ["QUARANTINE_DIR", "ContractError", "MemberIndex", "TableReport", "ValidationReport", "judge_table",
           "quarantine_frame", "reasons", "write_quarantine"]

QUARANTINE_DIR = "_rejected"
MEMBER_REJECTED = "member_rejected"


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


# --- judging rows


def _canonical(c: TableContract, raw: pd.DataFrame
               ) -> tuple[pd.DataFrame, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The table in contract columns, dtypes and units; the rows each parsing rule rejects; and per
    column the rows made missing because their value could not be read or converted."""
    n = len(raw)
    cols: dict[str, pd.Series] = {}
    fails: dict[str, np.ndarray] = {}
    unreadable: dict[str, np.ndarray] = {}
    for name, col in c.columns.items():
        alt = UNIT_ALTERNATIVES.get(name)
        if name not in raw.columns and not (alt and alt[0] in raw.columns):
            if not col.nullable:
                raise ContractError(c.name, name, "missing_column", n,
                                    message=f"{c.name}.{name}: required column is missing ({n} rows unusable)")
            cols[name] = missing_column(col.kind, n)
            continue
        if alt and alt[0] in raw.columns:  # e.g. weight_lb instead of (or beside) weight_kg
            alt_values, failed = parse_float(raw[alt[0]])
            converted = alt[1](alt_values)
            if name in raw.columns:
                own, own_failed = parse_float(raw[name])
                converted, failed = np.where(np.isnan(own), converted, own), failed | own_failed
            parsed: pd.Series = pd.Series(converted)
        else:
            parsed, failed = parse_column(raw[name], col.kind, blank_is_missing=col.key)
        cols[name] = parsed
        if failed.any():
            rule = {"date": "invalid_date", "bool": "unknown_code"}.get(col.kind, "invalid_number")
            fails[f"{rule}:{name}"] = unreadable[name] = failed
    canon = pd.DataFrame(cols, index=pd.RangeIndex(n), copy=False)  # no block consolidation: ~0.1 µs/row
    if c.name == "lab_results":
        values, units, ok = canonical_labs(canon["test"], canon["value"].to_numpy(), canon["unit"])
        unknown = ~ok & canon["test"].isin(CANONICAL_UNIT).to_numpy()
        values[unknown] = np.nan  # an unconvertible value must not reach the range checks
        canon["value"], canon["unit"] = values, pd.Series(units, dtype="str")
        unreadable["value"] = unreadable.get("value", np.zeros(n, dtype=bool)) | unknown
        for test in CANONICAL_UNIT:
            sel = unknown & (canon["test"] == test).to_numpy()
            if sel.any():
                fails[f"unknown_unit:{test}"] = sel
    return canon, fails, unreadable


@functools.lru_cache(maxsize=64)
def _schema(c: TableContract, extract_date: date) -> pa.DataFrameSchema:
    latest = pd.Timestamp(extract_date)

    def check(fn: Callable, label: str) -> pa.Check:
        return pa.Check(fn, name=label, error=label)

    columns = {}
    for name, col in c.columns.items():
        checks = []
        if col.range:
            lo, hi = col.range[:2]
            checks.append(check(lambda s, lo=lo, hi=hi: s.between(lo, hi), f"out_of_range:{name}"))
        if col.codes:
            checks.append(check(lambda s, codes=col.codes: s.isin(codes), f"unknown_code:{name}"))
        if col.pattern:
            rx = rf"(?:{col.pattern}(?:;{col.pattern})*)?"
            checks.append(check(lambda s, rx=rx: s.str.fullmatch(rx), f"unknown_code:{name}"))
        if col.not_future:
            checks.append(check(lambda s: s <= latest, f"future_date:{name}"))
        columns[name] = pa.Column(CANONICAL_DTYPES[col.kind], checks, nullable=col.nullable)
    return pa.DataFrameSchema(columns, checks=[check(fc.ok, fc.label) for fc in c.checks], strict=True,
                              ordered=True)


def _schema_failures(c: TableContract, canon: pd.DataFrame, extract_date: date,
                     unreadable: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    try:
        # inplace: without it pandera deep-copies (and consolidates) the frame, ~0.15 µs/row; it coerces nothing
        _schema(c, extract_date).validate(canon, lazy=True, inplace=True)
        return {}
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
    fails: dict[str, np.ndarray] = {}
    for (column, check), rows in cases.groupby(["column", "check"], dropna=False)["index"]:
        if check == "not_nullable":  # unreadable values already carry their own rule
            label = f"{'null_key' if c.columns[column].key else 'null_required'}:{column}"
            rows = rows[~unreadable.get(column, np.zeros(len(canon), dtype=bool))[rows.to_numpy(dtype=np.int64)]]
        elif check in c.rules:
            label = str(check)
        else:  # a dtype or schema failure means parsing and schema disagree: a bug, not bad data
            raise RuntimeError(f"{c.name}.{column}: canonical frame fails pandera check {check!r}")
        mask = fails.setdefault(label, np.zeros(len(canon), dtype=bool))
        mask[rows.to_numpy(dtype=np.int64)] = True
    return fails


def _duplicates(canon: pd.DataFrame, key: tuple[str, ...]) -> np.ndarray:
    """Later rows repeating an earlier row's key; rows with a missing key part are never duplicates."""
    combined, valid, radix = np.zeros(len(canon), dtype=np.int64), np.ones(len(canon), dtype=bool), 1
    for col in key:
        codes, uniques = pd.factorize(canon[col])
        radix *= len(uniques) + 1
        if radix >= 2**62:  # keys too many to pack in one int64: let pandas hash the columns
            return (canon[list(key)].duplicated() & canon[list(key)].notna().all(axis=1)).to_numpy()
        combined = combined * (len(uniques) + 1) + codes
        valid &= codes >= 0
    dup = np.zeros(len(canon), dtype=bool)
    dup[valid] = pd.Series(combined[valid]).duplicated().to_numpy()
    return dup


@dataclass(frozen=True)
class MemberIndex:
    """The members table as other tables see it: who exists, who was accepted, their birth dates."""

    known: pd.Index  # every member id in the members table, accepted or not
    accepted: pd.Index
    birth: np.ndarray  # birth dates of accepted, with NaT appended for "not found" (-1)

    @classmethod
    def of(cls, members: pd.DataFrame, accepted: pd.DataFrame) -> MemberIndex:
        """From the canonical members table (every row) and its accepted rows (unique ids)."""
        return cls(pd.Index(members["member_id"].dropna().unique()), pd.Index(accepted["member_id"]),
                   np.append(accepted["birth_date"].to_numpy(), np.datetime64("NaT")))


def judge_table(c: TableContract, raw: pd.DataFrame, extract_date: date, members: MemberIndex | None,
                ) -> tuple[pd.DataFrame, dict[str, np.ndarray], np.ndarray]:
    """The canonical frame, the rows each rule rejects (in c.rules order) and the member_rejected rows.

    A row that breaks its own rules is counted there even if its member was rejected too, so the
    owner sees every problem of the row at once; member_rejected holds the otherwise good rows.
    """
    canon, fails, unreadable = _canonical(c, raw)
    fails.update(_schema_failures(c, canon, extract_date, unreadable))
    fails["duplicate"] = _duplicates(canon, c.key)
    member_rejected = np.zeros(len(canon), dtype=bool)
    if members is not None:
        codes, uniques = pd.factorize(canon["member_id"])
        has = codes >= 0
        known = np.append(members.known.get_indexer(uniques) >= 0, False)[codes]
        at = np.append(members.accepted.get_indexer(uniques), -1)[codes]
        fails["unknown_member"] = has & ~known
        if c.record_date:
            birth = members.birth[at]
            fails[f"before_birth:{c.record_date}"] = canon[c.record_date].to_numpy() < birth
        member_rejected = has & known & (at < 0)
    ordered = {label: fails[label] for label in c.rules if label in fails and fails[label].any()}
    own = np.logical_or.reduce([*ordered.values(), np.zeros(len(canon), dtype=bool)])
    return canon, ordered, member_rejected & ~own


# --- quarantined rows and their files


def reasons(masks: Mapping[str, np.ndarray], positions: np.ndarray, member_rejected: np.ndarray) -> np.ndarray:
    """The reason string of each row at positions: every rule label it breaks, in the masks' order.

    Works on the rejected rows only, one vectorised step per rule, so its cost follows the
    number of rejections rather than the size of the table.
    """
    out = np.full(len(positions), "", dtype=object)
    for label, mask in masks.items():
        sel = mask[positions]
        if sel.any():
            prev = out[sel]
            out[sel] = np.where(prev == "", label, prev + ";" + label)
    out[member_rejected[positions]] = MEMBER_REJECTED
    return out


def quarantine_frame(raw: pd.DataFrame, allowed: Iterable[str], positions: np.ndarray, why: np.ndarray,
                     pepper: bytes) -> pd.DataFrame:
    """Rejected rows as read (so the owner sees the offending value), pseudonymised and stripped.

    Only contract columns (and their accepted unit alternatives) survive; member_id becomes
    member_ref; `source_row` is the 0-based row number in the source.
    """
    keep = [c for c in raw.columns if c in set(allowed)]
    out = raw.iloc[positions][keep].reset_index(drop=True)
    for col in out.columns:
        if out[col].dtype == object:  # mixed python objects cannot go to parquet as they are
            out[col] = out[col].astype("str")
    if "member_id" in out.columns:
        at = out.columns.get_loc("member_id")
        refs = member_refs(out.pop("member_id"), pepper)
        out.insert(int(at), "member_ref", refs.to_numpy())  # type: ignore[arg-type]  # get_loc is an int here
    out["reason"] = pd.Series(why, dtype="str")
    out["source_row"] = positions.astype(np.int64)
    return out


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

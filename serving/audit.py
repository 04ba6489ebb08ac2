"""The audit trail: one hash-chained record per scoring answer or refusal (EU AI Act Art. 12).

A record is committed before the answer leaves the service, so an answer a client holds always
has its record; when the commit fails, `append` raises `AuditUnavailable` and the service answers
503 (fail closed). Each record's hash covers the previous one's, so `verify` finds edited,
deleted or reordered records. SQLite by default, PostgreSQL by URL, through SQLAlchemy Core.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Double,
    Engine,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    create_engine,
    event,
    select,
    text,
)
from sqlalchemy.exc import SQLAlchemyError

__all__ = ["GENESIS_HASH", "AuditLog", "AuditRecord", "AuditUnavailable", "VerifyResult", "chain_hash", "utc_now"]

GENESIS_HASH = "0" * 64
"""The prev_hash of the first record: there is nothing before it to chain to."""

# One constant key for pg_advisory_xact_lock: every appender to this database takes the same
# lock, so reading the last hash and inserting the next record is one step for all processes.
_PG_LOCK_KEY = int.from_bytes(hashlib.sha256(b"chronorisk.audit_records").digest()[:8], "big", signed=True)
_WRITE = "chronorisk_audit_write"  # execution option: this transaction appends (SQLite: BEGIN IMMEDIATE)
_JSON_FIELDS = ("features", "reasons", "error")

_metadata = MetaData()
_records = Table(
    "audit_records",
    _metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("request_id", Text, nullable=False, unique=True),
    Column("time", Text, nullable=False),
    Column("endpoint", Text, nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("caller_key_id", Text),
    Column("product", Text),
    Column("model_name", Text),
    Column("model_version", Text),
    Column("input_sha256", Text),
    Column("member_ref", Text),
    Column("features", Text),
    Column("score", Double),
    Column("risk_class", Text),
    Column("decision", Text),
    Column("reasons", Text),
    Column("error", Text),
    Column("prev_hash", Text, nullable=False),
    Column("record_hash", Text, nullable=False),
    Index("ix_audit_records_time", "time"),
    Index("ix_audit_records_product", "product"),
)


class AuditUnavailable(RuntimeError):
    """The record could not be committed (or the log could not be read); the service answers 503."""


@dataclass(frozen=True)
class AuditRecord:
    """One answer or refusal as the client saw it. Identifiers are pseudonyms or hashes, never raw."""

    request_id: str
    time: str
    endpoint: str
    status_code: int
    caller_key_id: str | None
    product: str | None
    model_name: str | None
    model_version: str | None
    input_sha256: str | None
    member_ref: str | None
    features: dict[str, float | None] | None
    score: float | None
    risk_class: str | None
    decision: str | None
    reasons: list[dict[str, Any]] | None
    error: dict[str, Any] | None
    seq: int | None = None
    prev_hash: str | None = None
    record_hash: str | None = None


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of re-walking the chain. `checked` counts the records read, the bad one included.

    `head_hash` is the last good record's hash: writing it down elsewhere (a ticket, a signed
    report) is what lets a later check notice records cut off the end, which no chain can see.
    """

    ok: bool
    checked: int
    first_bad_seq: int | None
    reason: str | None
    head_hash: str | None = None


def utc_now() -> str:
    """The current time in the form `records(since=...)` compares as text (UTC, milliseconds)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _canonical_json(value: Any) -> str:
    # json writes floats with repr(), which round-trips every double exactly; allow_nan=False
    # because NaN and infinity are not JSON and would not read back.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def chain_hash(record: AuditRecord) -> str:
    """SHA-256 hex of prev_hash + canonical JSON of every field but seq and record_hash.

    Canonical: keys sorted, no spaces, UTF-8, floats as repr() (exact). seq is left out so that
    the chain, not the numbering, carries the order: renumbering rows after a deletion still
    breaks the next record's prev_hash.
    """
    if record.prev_hash is None:
        raise ValueError("chain_hash needs the record's prev_hash")
    body = {f.name: getattr(record, f.name) for f in fields(record) if f.name not in ("seq", "record_hash")}
    return hashlib.sha256((record.prev_hash + _canonical_json(body)).encode("utf-8")).hexdigest()


def _normalised(record: AuditRecord) -> AuditRecord:
    """The record as it will read back from the database, or ValueError for a caller's mistake.

    Feature values become plain floats (numpy scalars included) and NaN becomes None, because
    NaN is how a missing value reaches the model and JSON has no NaN. Everything else must
    already be JSON: a record that cannot be stored exactly is refused rather than altered.
    """
    if not record.request_id:
        raise ValueError("an audit record needs a request_id")
    try:
        stamp = datetime.fromisoformat(record.time)
    except (TypeError, ValueError) as err:
        raise ValueError(f"audit time {record.time!r} is not ISO 8601") from err
    offset = stamp.utcoffset()
    if offset is None or offset.total_seconds() != 0:
        raise ValueError(f"audit time {record.time!r} is not UTC")
    try:
        features = None if record.features is None else {
            str(k): (None if v is None or math.isnan(float(v)) else float(v)) for k, v in record.features.items()}
        score = None if record.score is None else float(record.score)
        out = replace(record, features=features, score=score, status_code=int(record.status_code))
        return _from_row(_to_row(out))
    except (TypeError, ValueError) as err:
        raise ValueError(f"audit record {record.request_id!r} cannot be stored exactly: {err}") from err


def _to_row(record: AuditRecord) -> dict[str, Any]:
    # shallow: the nested fields are serialised just below, and asdict's deep copy of a 76-feature
    # vector and the reasons cost more than the rest of the append's Python work
    row = {f.name: getattr(record, f.name) for f in fields(record)}
    for name in _JSON_FIELDS:
        if row[name] is not None:
            row[name] = _canonical_json(row[name])
    if row["score"] is not None and not math.isfinite(row["score"]):
        raise ValueError("score is not finite")
    return row


def _from_row(row: Any) -> AuditRecord:
    values: dict[str, Any] = dict(row._mapping) if hasattr(row, "_mapping") else dict(row)
    for name in _JSON_FIELDS:
        if values.get(name) is not None:
            values[name] = json.loads(values[name])
    kwargs: dict[str, Any] = {f.name: values.get(f.name) for f in fields(AuditRecord)}
    return AuditRecord(**kwargs)


def _reason(err: BaseException) -> str:
    """The driver's first line, without SQL or parameters (those would echo the record)."""
    orig = getattr(err, "orig", None) or err
    first = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    return f"{type(orig).__name__}: {first}" if first else type(orig).__name__


class AuditLog:
    """The audit table of one database. Safe to share between threads and between processes."""

    def __init__(self, url: str) -> None:
        """Connect and create the table if missing; raise AuditUnavailable if the database is down.

        pool_pre_ping tests a pooled connection before use, so after a database restart the next
        append reconnects instead of failing on a dead socket; hide_parameters keeps record
        contents out of error messages.
        """
        self.url = url
        self._engine = self._make_engine(url)
        # Appenders of this process queue here, woken the moment the previous commit returns. Left
        # to the database, concurrent SQLite writers poll for its lock with sleeps that back off to
        # 100 ms, which at 8 concurrent requests cost more than the commits themselves. Other
        # processes still serialise on the database lock (BEGIN IMMEDIATE, or the advisory lock).
        self._appending = threading.Lock()
        try:
            with self._write() as conn:
                _metadata.create_all(conn, checkfirst=True)
        except SQLAlchemyError as err:
            self._engine.dispose()
            raise AuditUnavailable(f"audit log cannot be opened: {_reason(err)}") from err

    @staticmethod
    def _make_engine(url: str) -> Engine:
        is_sqlite = url.startswith("sqlite")
        connect_args: dict[str, Any] = {}
        if is_sqlite:
            connect_args["timeout"] = 30  # seconds a writer waits for another's lock before failing
        elif url.startswith("postgresql"):
            # Fail within seconds, not after a TCP timeout: a client waiting on a dead database is
            # better served by a prompt 503.
            connect_args = {"connect_timeout": 5, "options": "-c lock_timeout=10000 -c statement_timeout=15000"}
        engine = create_engine(url, pool_pre_ping=True, hide_parameters=True, connect_args=connect_args)
        if is_sqlite:
            event.listen(engine, "connect", _sqlite_on_connect)
            event.listen(engine, "begin", _sqlite_on_begin)
        return engine

    def _write(self) -> _Transaction:
        return _Transaction(self._engine, write=True)

    def append(self, record: AuditRecord) -> AuditRecord:
        """Chain and commit one record; return it as stored. Raises AuditUnavailable if not committed.

        ValueError instead means the caller built a record that cannot be stored exactly (a time
        that is not UTC, a non-finite score, a field that is not JSON).
        """
        clean = _normalised(record)
        try:
            with self._appending, self._write() as conn:
                last = conn.execute(
                    select(_records.c.seq, _records.c.record_hash).order_by(_records.c.seq.desc()).limit(1)
                ).first()
                seq, prev = (1, GENESIS_HASH) if last is None else (last.seq + 1, last.record_hash)
                stored = replace(clean, seq=seq, prev_hash=prev, record_hash=None)
                stored = replace(stored, record_hash=chain_hash(stored))
                conn.execute(_records.insert().values(**_to_row(stored)))
        except SQLAlchemyError as err:
            raise AuditUnavailable(f"audit record {record.request_id!r} not committed: {_reason(err)}") from err
        return stored

    def get(self, request_id: str) -> AuditRecord | None:
        """The record of one request, as stored."""
        try:
            with self._engine.connect() as conn:
                row = conn.execute(select(_records).where(_records.c.request_id == request_id)).first()
        except SQLAlchemyError as err:
            raise AuditUnavailable(f"audit log cannot be read: {_reason(err)}") from err
        return None if row is None else _from_row(row)

    def records(
        self,
        *,
        since: str | None = None,
        product: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> Iterator[AuditRecord]:
        """Stored records in seq order (the newest first if asked), streamed rather than loaded.

        `since` compares with `time` as text, so give it in the callers' format (`utc_now()`),
        or a date prefix such as "2025-01-31".
        """
        query = select(_records).order_by(_records.c.seq.desc() if newest_first else _records.c.seq)
        if since is not None:
            query = query.where(_records.c.time >= since)
        if product is not None:
            query = query.where(_records.c.product == product)
        if limit is not None:
            query = query.limit(limit)
        yield from self._stream(query)

    def _stream(self, query: Any) -> Iterator[AuditRecord]:
        try:
            with self._engine.connect() as conn:
                result = conn.execution_options(stream_results=True, yield_per=1000).execute(query)
                for row in result:
                    yield _from_row(row)
        except SQLAlchemyError as err:
            raise AuditUnavailable(f"audit log cannot be read: {_reason(err)}") from err

    def verify(self) -> VerifyResult:
        """Re-walk the chain in seq order and report the first record that breaks it, and why."""
        checked, prev_seq, prev_hash = 0, 0, GENESIS_HASH
        for row in self._raw_rows():
            checked += 1
            seq, head = row["seq"], (prev_hash if prev_seq else None)
            if seq != prev_seq + 1:
                why = (f"seq {seq} follows seq {prev_seq}: records missing" if prev_seq
                       else f"the first record has seq {seq}, not 1: records missing")
                return VerifyResult(False, checked, seq, why, head)
            if row["prev_hash"] != prev_hash:
                what = f"record {prev_seq}'s hash" if prev_seq else "the start of the chain"
                return VerifyResult(False, checked, seq,
                                    f"prev_hash does not match {what}: records deleted or reordered", head)
            try:
                recomputed = chain_hash(_from_row(row))
            except (TypeError, ValueError) as err:
                return VerifyResult(False, checked, seq, f"stored fields unreadable: {err}", head)
            if recomputed != row["record_hash"]:
                return VerifyResult(False, checked, seq, "record_hash does not match the record's contents: edited",
                                    head)
            prev_seq, prev_hash = seq, row["record_hash"]
        return VerifyResult(True, checked, None, None, prev_hash if checked else None)

    def _raw_rows(self) -> Iterator[dict[str, Any]]:
        try:
            with self._engine.connect() as conn:
                result = conn.execution_options(stream_results=True, yield_per=1000).execute(
                    select(_records).order_by(_records.c.seq))
                for row in result:
                    yield dict(row._mapping)
        except SQLAlchemyError as err:
            raise AuditUnavailable(f"audit log cannot be read: {_reason(err)}") from err

    def close(self) -> None:
        """Release the pooled connections."""
        self._engine.dispose()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Transaction:
    """A connection in a write transaction: commit on success, roll back on any error.

    On PostgreSQL the transaction first takes the appenders' advisory lock (released by the
    commit); on SQLite the begin hook opens it with BEGIN IMMEDIATE, which takes the database's
    write lock at once. Either way, no other process can chain onto the same last record.
    """

    def __init__(self, engine: Engine, *, write: bool) -> None:
        self._engine, self._write = engine, write
        self._conn: Connection | None = None

    def __enter__(self) -> Connection:
        conn = self._engine.connect()
        try:
            conn.execution_options(**{_WRITE: self._write})
            conn.begin()
            if self._write and conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self._conn is not None
        try:
            if exc_type is None:
                self._conn.commit()
            else:
                self._conn.rollback()
        finally:
            self._conn.close()


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take BEGIN away from the sqlite3 driver (it would not begin before a SELECT, so the last
    # hash would be read outside the transaction); the begin hook below emits it instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets the monitor and `audit verify` read while the service appends; synchronous=FULL
    # makes each commit durable before append returns, which is the whole point of committing first.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")

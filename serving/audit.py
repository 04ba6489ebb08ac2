"""The audit trail: one hash-chained record per scoring answer or refusal (EU AI Act Art. 12).

A record is committed before the answer leaves the service, so an answer a client holds always
has its record; when the commit fails, `append` raises `AuditUnavailable` and the service answers
503 (fail closed). Each record's hash is an HMAC (key kept outside the database) over the previous
one's, and the chain head is signed into a checkpoint file every N records and at close
(`serving.audit_seal`), so `verify` (`serving.audit_verify`) finds edited, deleted, reordered,
re-chained and truncated records. SQLite by default, PostgreSQL by URL, through SQLAlchemy Core.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Column, Double, Index, Integer, MetaData, Table, Text, select
from sqlalchemy.exc import SQLAlchemyError

from serving.audit_db import Transaction, create_private, deadline, make_engine, reason, remaining
from serving.audit_record import (
    GENESIS_HASH,
    AuditRecord,
    VerifyResult,
    chain_hash,
    from_row,
    normalised,
    to_row,
    utc_now,
)
from serving.audit_seal import AuditKeys, CheckpointLog
from serving.audit_verify import verify_log

if TYPE_CHECKING:
    from chronorisk.settings import Settings

logger = logging.getLogger("chronorisk.audit")

__all__ = ["GENESIS_HASH", "AuditLog", "AuditRecord", "AuditUnavailable", "VerifyResult", "chain_hash",
           "checkpoint_path", "open_audit_log", "utc_now"]

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


_LAST = select(_records.c.seq, _records.c.record_hash).order_by(_records.c.seq.desc()).limit(1)
_INSERT = _records.insert()  # built once: .values(**row) per call compiled a new statement each time


class AuditUnavailable(RuntimeError):
    """The record could not be committed (or the log could not be read); the service answers 503."""


@dataclass(eq=False)
class _Pending:
    """One record waiting to be committed, and what became of it (done: stored, or failed with error)."""

    record: AuditRecord
    stored: AuditRecord | None = None
    error: AuditUnavailable | None = None

    @property
    def done(self) -> bool:
        return self.stored is not None or self.error is not None

    def fail(self, error: AuditUnavailable) -> None:
        self.error = error


def checkpoint_path(url: str, configured: Path | None = None) -> Path | None:
    """Where the signed checkpoints go: the configured file, else beside a SQLite database
    (`audit.db` -> `audit.db.checkpoints.jsonl`); a server database has no 'beside', so None."""
    if configured is not None:
        return configured
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        db = Path(url.removeprefix("sqlite:///"))
        return db.with_name(db.name + ".checkpoints.jsonl")
    return None


class AuditLog:
    """The audit table of one database. Safe to share between threads and between processes."""

    def __init__(self, url: str, keys: AuditKeys | None = None, checkpoints: Path | None = None,
                 checkpoint_every: int = 100, timeout_s: float = 2.0) -> None:
        """Connect and create the table if missing; raise AuditUnavailable if the database is down.

        Without `keys` the log is read-only (the monitor, `audit list`). With keys, every
        `checkpoint_every`-th record (and the first) and the head at `close` are signed into
        `checkpoints` (default: beside a SQLite file; a PostgreSQL log must name one). Every
        append, lock wait included, gives up after `timeout_s` (`serving.audit_db`).
        """
        self.url = url
        self.keys = keys
        where = checkpoint_path(url, checkpoints)
        if keys is not None and keys.signing_key is not None and where is None:
            raise ValueError("an audit log on a server database needs a checkpoint file (CHRONORISK_AUDIT_CHECKPOINTS)")
        self.checkpoints = CheckpointLog(where) if where is not None else None
        self.checkpoint_every = checkpoint_every
        self._committed_seq = 0  # the latest record this instance committed
        self._signed_seq = 0  # the latest head this instance signed
        self.timeout_s = timeout_s
        self._hung_until = 0.0  # monotonic time before which appends fail at once (the database hung)
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            create_private(Path(url.removeprefix("sqlite:///")))
        self._engine = make_engine(url, timeout_s)
        # Appenders of this process queue here, woken the moment the previous commit returns. Left
        # to the database, concurrent SQLite writers poll for its lock with sleeps that back off to
        # 100 ms, which at 8 concurrent requests cost more than the commits themselves. Other
        # processes still serialise on the database lock (BEGIN IMMEDIATE, or the advisory lock).
        self._turn = threading.Condition()
        self._leading = False  # an append of this process is committing (the others queue)
        self._queue: list[_Pending] = []  # records waiting for the next commit (group commit, `append`)
        self._signing = threading.Lock()
        # Opening is not on a request's path: several workers starting together may wait on each other's
        # SQLite lock for longer than one write may, so the table creation is retried for up to 10 s.
        opening = time.monotonic() + max(timeout_s, 10.0)
        while True:
            try:
                with deadline(max(timeout_s, 10.0)), self._write() as conn:
                    _metadata.create_all(conn, checkfirst=True)
                break
            except SQLAlchemyError as err:
                if "locked" in str(err) and time.monotonic() < opening:
                    time.sleep(0.05)
                    continue
                self._engine.dispose()
                raise AuditUnavailable(f"audit log cannot be opened: {reason(err)}") from err

    def _write(self) -> Transaction:
        return Transaction(self._engine, write=True)

    def append(self, record: AuditRecord) -> AuditRecord:
        """Chain and commit one record; return it as stored. Raises AuditUnavailable if not committed.

        ValueError instead means the caller built a record that cannot be stored exactly (a time
        that is not UTC, a non-finite score, a field that is not JSON).

        Group commit: a record that waits while another append commits is committed with the others
        waiting then, in one transaction, by whichever of them leads next; each caller returns only once
        its own record's outcome is known, so every answer still follows its committed record. A record
        still queued when its caller's time is up is withdrawn (never committed later); one already taken
        into a commit waits for that commit's outcome, which the committing caller's own deadline bounds.
        """
        if self.keys is None:
            raise ValueError("this audit log was opened without keys: it is read-only")
        mine = _Pending(normalised(record))  # a record that cannot be stored: the caller's ValueError, alone
        if time.monotonic() < self._hung_until:  # the last write ran out of time: do not queue behind it
            raise self._hung(record.request_id)
        give_up = time.monotonic() + self.timeout_s
        with self._turn:
            self._queue.append(mine)
            while not mine.done and self._leading:
                left = give_up - time.monotonic()
                if left <= 0 and mine in self._queue:  # never taken: withdrawn, so it will not commit later
                    self._queue.remove(mine)
                    raise AuditUnavailable(f"audit record {record.request_id!r} not committed: "
                                           f"other appends held the log for {self.timeout_s:g} s")
                if left < -2 * self.timeout_s:  # taken, but its commit outlived its own deadline twice over
                    raise AuditUnavailable(f"audit record {record.request_id!r}: the commit holding it did not "
                                           f"finish within {3 * self.timeout_s:g} s; its outcome is unknown")
                # taken into a commit in progress: its outcome comes within that commit's own deadline
                self._turn.wait(timeout=left if left > 0 else self.timeout_s)
            if not mine.done:  # lead: commit everything waiting, this record included
                self._leading = True
                batch, self._queue = self._queue, []
        if not mine.done:
            try:
                with deadline(self.timeout_s):
                    self._commit_batch(batch, self.keys.hmac_key)
            except BaseException as err:  # never leave a waiter without an outcome
                logger.error("audit commit failed unexpectedly: %s", type(err).__name__)
                for p in batch:
                    if not p.done:
                        p.fail(AuditUnavailable(f"audit record {p.record.request_id!r} not committed: "
                                                f"{type(err).__name__}"))
            finally:
                with self._turn:
                    self._leading = False
                    self._turn.notify_all()
            self._sign_due(batch)
        if mine.error is not None:
            raise mine.error
        if mine.stored is None:  # unreachable: done means stored or failed
            raise AuditUnavailable(f"audit record {record.request_id!r} not committed")
        return mine.stored

    def _commit_batch(self, batch: list[_Pending], key: bytes) -> None:
        """Commit the waiting records in one transaction; if it fails and holds several, each alone (so one
        record's failure, a repeated request id say, is not its neighbours'). After a hang, none is tried
        until the log has had timeout_s to recover."""
        if time.monotonic() < self._hung_until:  # a commit hung moments ago: do not try again yet
            for p in batch:
                p.fail(self._hung(p.record.request_id))
            return
        try:
            stored = self._commit([p.record for p in batch], key)
        except AuditUnavailable as err:
            if (remaining() or 1.0) <= 0:  # a hang, not a refusal: fail fast for a while, one probe after
                self._hung_until = time.monotonic() + self.timeout_s
            if len(batch) == 1:
                batch[0].fail(err)
                return
            for p in batch:
                self._commit_batch([p], key)
            return
        for p, s in zip(batch, stored, strict=True):
            p.stored = s
        self._committed_seq = max(self._committed_seq, stored[-1].seq or 0)

    def _hung(self, request_id: str) -> AuditUnavailable:
        return AuditUnavailable(f"audit record {request_id!r} not committed: the audit database did not answer "
                                f"within {self.timeout_s:g} s moments ago")

    def _sign_due(self, batch: list[_Pending]) -> None:
        """Sign the checkpoints a batch reached (the first record, every checkpoint_every-th), outside the
        commit: a slow checkpoint file must not hold up the appends queued behind it."""
        due = [p.stored for p in batch if p.stored is not None and p.stored.seq is not None
               and (p.stored.seq == 1 or p.stored.seq % self.checkpoint_every == 0)]
        for s in due:
            assert s.seq is not None and s.record_hash is not None
            self._sign(s.seq, s.record_hash)

    def _commit(self, records: list[AuditRecord], key: bytes) -> list[AuditRecord]:
        try:
            with self._write() as conn:
                last = conn.execute(_LAST).first()
                seq, prev = (1, GENESIS_HASH) if last is None else (last.seq + 1, last.record_hash)
                out = []
                for clean in records:
                    stored = replace(clean, seq=seq, prev_hash=prev, record_hash=None)
                    stored = replace(stored, record_hash=chain_hash(stored, key))
                    out.append(stored)
                    seq, prev = seq + 1, stored.record_hash
                conn.execute(_INSERT, [to_row(s) for s in out])
        except SQLAlchemyError as err:
            which = repr(records[0].request_id) if len(records) == 1 else f"batch of {len(records)}"
            raise AuditUnavailable(f"audit record {which} not committed: {reason(err)}") from err
        return out

    def _sign(self, seq: int, head: str) -> None:
        """Append a signed checkpoint; a failure is logged, never raised: the record is committed and
        its answer is owed, and the next checkpoint covers it."""
        if self.checkpoints is None or self.keys is None or self.keys.signing_key is None:
            return
        try:
            with self._signing:
                self.checkpoints.append(self.keys, seq, head, utc_now())
                self._signed_seq = max(self._signed_seq, seq)
        except OSError as err:
            logger.error("audit checkpoint at seq %d not written: %s", seq, type(err).__name__)

    def checkpoint(self) -> int | None:
        """Sign the database's current head (whoever appended it); the seq signed, or None if empty."""
        with deadline(self.timeout_s), self._engine.connect() as conn:
            last = conn.execute(_LAST).first()
        if last is None:
            return None
        self._sign(int(last.seq), str(last.record_hash))
        return int(last.seq)

    def get(self, request_id: str) -> AuditRecord | None:
        """The record of one request, as stored."""
        try:
            with self._engine.connect() as conn:
                row = conn.execute(select(_records).where(_records.c.request_id == request_id)).first()
        except SQLAlchemyError as err:
            raise AuditUnavailable(f"audit log cannot be read: {reason(err)}") from err
        return None if row is None else from_row(row)

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
                    yield from_row(row)
        except SQLAlchemyError as err:
            raise AuditUnavailable(f"audit log cannot be read: {reason(err)}") from err

    def verify(self) -> VerifyResult:
        """Re-walk the chain under the key and check it against every signed checkpoint
        (`serving.audit_verify`): the first record that breaks it, and why."""
        return verify_log(self)

    def raw_rows(self) -> Iterator[dict[str, Any]]:
        """Every stored row in seq order, as the database holds it (for verification)."""
        yield from self._raw_rows()

    def _raw_rows(self) -> Iterator[dict[str, Any]]:
        try:
            with self._engine.connect() as conn:
                result = conn.execution_options(stream_results=True, yield_per=1000).execute(
                    select(_records).order_by(_records.c.seq))
                for row in result:
                    yield dict(row._mapping)
        except SQLAlchemyError as err:
            raise AuditUnavailable(f"audit log cannot be read: {reason(err)}") from err

    def close(self) -> None:
        """Sign the head if this log appended since its last checkpoint (shutdown), then release the pool."""
        if self._committed_seq > self._signed_seq:  # records this instance appended that no checkpoint covers
            try:
                self.checkpoint()
            except SQLAlchemyError as err:
                logger.error("audit checkpoint at close not written: %s", reason(err))
        self._engine.dispose()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_audit_log(settings: Settings, *, writer: bool) -> AuditLog:
    """The audit log the settings name; a writer gets the keys (created on first use in development
    only, see `serving.audit_seal.keys_for`), a reader none."""
    from serving.audit_seal import keys_for

    keys = keys_for(settings) if writer else None
    return AuditLog(settings.audit_url, keys, settings.audit_checkpoints, settings.audit_checkpoint_every,
                    settings.audit_timeout_s)

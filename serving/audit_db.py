"""The audit log's database plumbing: engines, write transactions and client-side deadlines.

A hung database (a stopped PostgreSQL, a stalled disk) must turn into a fast 503, not a request
that waits for BentoML's own timeout while its record may still commit later. `statement_timeout`
and `lock_timeout` are enforced by the server, so they do nothing against a server that does not
run; the deadline here is the client's own: psycopg2 does its I/O through a wait callback that
gives up when the calling thread's deadline passes (connect, statements, locks and commit alike)
and shuts the connection down, so the pool never hands it out again.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text

__all__ = ["DeadlineExceeded", "Transaction", "create_private", "deadline", "make_engine", "reason", "remaining"]

# One constant key for pg_advisory_xact_lock: every appender to this database takes the same
# lock, so reading the last hash and inserting the next record is one step for all processes.
_PG_LOCK_KEY = int.from_bytes(hashlib.sha256(b"chronorisk.audit_records").digest()[:8], "big", signed=True)
_WRITE = "chronorisk_audit_write"  # execution option: this transaction appends (SQLite: BEGIN IMMEDIATE)
_local = threading.local()
_callback_installed = False


class DeadlineExceeded(TimeoutError):
    """The audit database did not answer before the client-side deadline."""


@contextlib.contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Every psycopg2 wait in this thread inside the block gives up `seconds` from now (None: never)."""
    before = getattr(_local, "deadline", None)
    _local.deadline = None if seconds is None else time.monotonic() + seconds
    try:
        yield
    finally:
        _local.deadline = before


def remaining() -> float | None:
    """Seconds left before this thread's deadline (None: no deadline); may be negative."""
    end = getattr(_local, "deadline", None)
    return None if end is None else end - time.monotonic()


def _wait_with_deadline(conn: Any) -> None:
    """psycopg2's wait callback (psycopg2.extras.wait_select, plus the thread's deadline)."""
    from psycopg2 import OperationalError, extensions

    while True:
        left = remaining()
        if left is not None and left <= 0:
            # conn.close() would wait for the query in progress; shutting the socket down ends it at once,
            # and the message below is one SQLAlchemy reads as a disconnect, so the pool drops the connection
            with contextlib.suppress(OSError), socket.socket(fileno=os.dup(conn.fileno())) as sock:
                sock.shutdown(socket.SHUT_RDWR)
            raise OperationalError("server closed the connection unexpectedly: the audit database did not answer "
                                   "within the client-side deadline")
        state = conn.poll()
        if state == extensions.POLL_OK:
            return
        timeout = None if left is None else max(left, 0.0)
        if state == extensions.POLL_READ:
            select.select([conn.fileno()], [], [], timeout)
        elif state == extensions.POLL_WRITE:
            select.select([], [conn.fileno()], [], timeout)
        else:
            raise OperationalError(f"bad state from poll: {state}")


def _install_wait_callback() -> None:
    # Process-wide in psycopg2. Without a deadline in the calling thread it waits as psycopg2 itself
    # would, so other PostgreSQL users in the process (an MLflow store) are unaffected.
    global _callback_installed
    if not _callback_installed:
        from psycopg2 import extensions

        extensions.set_wait_callback(_wait_with_deadline)
        _callback_installed = True


def make_engine(url: str, timeout_s: float) -> Engine:
    """An engine whose every wait is bounded by about `timeout_s`, client-side and server-side.

    pool_pre_ping tests a pooled connection before use, so after a database restart the next
    append reconnects instead of failing on a dead socket; hide_parameters keeps record contents
    out of error messages.
    """
    is_sqlite = url.startswith("sqlite")
    connect_args: dict[str, Any] = {}
    if is_sqlite:
        connect_args["timeout"] = timeout_s  # seconds a writer waits for another's lock before failing
    elif url.startswith("postgresql"):
        _install_wait_callback()
        ms = max(int(timeout_s * 1000), 1)
        connect_args = {"connect_timeout": max(math.ceil(timeout_s), 1),
                        "options": f"-c lock_timeout={ms} -c statement_timeout={ms}"}
    engine = create_engine(url, pool_pre_ping=True, hide_parameters=True, connect_args=connect_args)
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    return engine


class Transaction:
    """A connection in a transaction: commit on success, roll back on any error.

    A write transaction on PostgreSQL first takes the appenders' advisory lock (released by the
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


def reason(err: BaseException) -> str:
    """The driver's first line, without SQL or parameters (those would echo the record)."""
    orig = getattr(err, "orig", None) or err
    first = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    return f"{type(orig).__name__}: {first}" if first else type(orig).__name__


def create_private(db: Path) -> None:
    """Create a missing SQLite file as 0600 before SQLite does (it would honour the umask, often 0644);
    SQLite gives its -wal and -shm files the database file's mode."""
    if db.parent.is_dir() and not db.exists():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


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

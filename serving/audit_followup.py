"""Second records for answers the client never got, written when the database takes them.

A record is committed before its answer is sent, so a record can stand for an answer that was
then not delivered: the audit write timed out after the database may already have committed it
(the client got 503), the client hung up before the answer went out, or BentoML's own timeout
answered 504 while the scoring thread went on. Each such case gets a second record linked to
the first by request id, so no record stands unqualified for an answer the client did not
receive. They are queued and retried in the background, because the moment they are needed is
usually the moment the database is not answering.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from serving.audit import AuditLog, AuditRecord, AuditUnavailable, utc_now
from serving.audit_db import deadline

logger = logging.getLogger("chronorisk.audit")
MAX_PENDING = 10_000  # beyond this the database has been away long enough that counting is all we can do


def undelivered_record(request_id: str, endpoint: str, delivered_status: int, why: str,
                       caller_key_id: str | None = None, product: str | None = None) -> AuditRecord:
    """The linked record: request `request_id` was answered `delivered_status`, whatever its own record says."""
    return AuditRecord(
        request_id=f"{request_id}.undelivered", time=utc_now(), endpoint=endpoint, status_code=delivered_status,
        caller_key_id=caller_key_id, product=product, model_name=None, model_version=None, input_sha256=None,
        member_ref=None, features=None, score=None, risk_class=None, decision=None, reasons=None,
        error={"status": delivered_status, "links": request_id, "rule": "answer_not_delivered", "why": why})


class FollowUps:
    """A queue of linked records and the one background thread that writes them, oldest first."""

    def __init__(self, log: AuditLog, retry_s: float = 1.0) -> None:
        self.log, self.retry_s = log, retry_s
        self._pending: deque[AuditRecord] = deque()
        self._lock = threading.Lock()
        self._writer: threading.Thread | None = None
        self.dropped = 0

    def add(self, record: AuditRecord) -> None:
        with self._lock:
            if len(self._pending) >= MAX_PENDING:
                self.dropped += 1
                logger.error("audit follow-up queue full: %d linked records not kept", self.dropped)
                return
            self._pending.append(record)
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._drain, name="audit-followups", daemon=True)
                self._writer.start()

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._writer = None
                    return
                record = self._pending[0]
            try:
                self.log.append(record)
            except AuditUnavailable:
                if not self._already_written(record.request_id):  # a commit whose answer was lost counts
                    time.sleep(self.retry_s)
                    continue
            except ValueError as err:  # a duplicate (already written) or a malformed record: never retried
                logger.error("audit follow-up %s dropped: %s", record.request_id, type(err).__name__)
            with self._lock:
                self._pending.popleft()

    def _already_written(self, request_id: str) -> bool:
        try:
            with deadline(self.log.timeout_s):
                return self.log.get(request_id) is not None
        except AuditUnavailable:
            return False

    def flush(self, timeout_s: float) -> int:
        """Wait up to `timeout_s` for the queue to empty; the number still pending."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            with self._lock:
                if not self._pending:
                    return 0
            time.sleep(0.05)
        with self._lock:
            return len(self._pending)

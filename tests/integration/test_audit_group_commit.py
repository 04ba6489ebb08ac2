"""Group commit: appends that wait while another commits share one transaction, and each still
returns only its own committed record (a real SQLite file; its write lock held from outside)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from audit_test_keys import AUDIT_KEYS
from sqlalchemy import Engine, event

from serving.audit import AuditLog, AuditRecord, AuditUnavailable, utc_now

WAITING = 7


def _record(request_id: str) -> AuditRecord:
    return AuditRecord(request_id=request_id, time=utc_now(), endpoint="/score", status_code=200,
                       caller_key_id=None, product="diabetes", model_name="m", model_version="1", input_sha256=None,
                       member_ref=None, features={"x": 1.0}, score=0.5, risk_class="A", decision="rated",
                       reasons=None, error=None)


@contextmanager
def _commits() -> Iterator[list[int]]:
    """Every COMMIT any engine sends while inside (SQLAlchemy's public event)."""
    seen: list[int] = []

    def count(_: object) -> None:
        seen.append(1)

    event.listen(Engine, "commit", count)
    try:
        yield seen
    finally:
        event.remove(Engine, "commit", count)


def _append_all(log: AuditLog, ids: list[str], db: str) -> tuple[dict[str, object], int]:
    """The first append waits on the database's write lock (held here for 0.4 s) while `ids` queue behind
    it; what each append returned or raised, and the number of commits."""
    outcomes: dict[str, object] = {}

    def one(rid: str) -> None:
        try:
            outcomes[rid] = log.append(_record(rid))
        except AuditUnavailable as err:
            outcomes[rid] = err

    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    with _commits() as commits:
        first = threading.Thread(target=one, args=("first",))
        first.start()
        time.sleep(0.1)  # the first append holds the log, waiting for the database
        rest = [threading.Thread(target=one, args=(rid,)) for rid in ids]
        for t in rest:
            t.start()
        time.sleep(0.3)
        blocker.execute("COMMIT")
        for t in [first, *rest]:
            t.join(timeout=30)
    blocker.close()
    return outcomes, len(commits)


@pytest.fixture
def log(tmp_path) -> Iterator[tuple[AuditLog, str]]:
    db = str(tmp_path / "audit.db")
    with AuditLog(f"sqlite:///{db}", AUDIT_KEYS, tmp_path / "checkpoints.jsonl") as opened:
        yield opened, db


def test_appends_waiting_behind_a_commit_share_the_next_one_and_each_gets_its_own_record(log):
    audit, db = log
    ids = [f"waiting-{i}" for i in range(WAITING)]
    outcomes, commits = _append_all(audit, ids, db)
    assert commits == 2  # the first alone, then the seven that queued behind it, together
    assert {rid: outcomes[rid].request_id for rid in ["first", *ids]} == {rid: rid for rid in ["first", *ids]}
    assert sorted(outcomes[rid].seq for rid in ["first", *ids]) == list(range(1, WAITING + 2))
    stored = {r.request_id: r for r in audit.records()}
    assert all(stored[rid] == outcomes[rid] for rid in ["first", *ids])  # as returned, so as committed
    result = audit.verify()
    assert (result.ok, result.checked) == (True, WAITING + 1)


def test_a_record_its_batch_cannot_commit_fails_alone(log):
    audit, db = log
    audit.append(_record("taken"))
    ids = ["waiting-0", "taken", "waiting-1"]  # "taken" repeats a committed request id: the insert is refused
    outcomes, _ = _append_all(audit, ids, db)
    assert isinstance(outcomes["taken"], AuditUnavailable)
    assert "taken" in str(outcomes["taken"]) and "waiting" not in str(outcomes["taken"])
    assert [outcomes[rid].request_id for rid in ("first", "waiting-0", "waiting-1")] == \
        ["first", "waiting-0", "waiting-1"]
    result = audit.verify()
    assert (result.ok, result.checked) == (True, 4)


def test_a_batch_past_a_checkpoint_still_has_its_last_record_signed_at_close(tmp_path):
    db = str(tmp_path / "audit.db")
    audit = AuditLog(f"sqlite:///{db}", AUDIT_KEYS, tmp_path / "checkpoints.jsonl", checkpoint_every=3)
    outcomes, commits = _append_all(audit, ["waiting-0", "waiting-1", "waiting-2"], db)
    assert commits == 2 and outcomes["waiting-2"].seq == 4  # seq 1 alone, then 2-4 in one commit (signing 3)
    audit.close()  # the head, 4, is covered by no checkpoint yet: close signs it
    with AuditLog(f"sqlite:///{db}", AUDIT_KEYS, tmp_path / "checkpoints.jsonl") as reopened:
        result = reopened.verify()
    assert (result.ok, result.covered_seq) == (True, 4)


def test_a_record_taken_into_a_slow_commit_gets_that_commits_outcome_even_past_its_own_deadline(tmp_path):
    db = str(tmp_path / "audit.db")
    audit = AuditLog(f"sqlite:///{db}", AUDIT_KEYS, tmp_path / "checkpoints.jsonl", timeout_s=0.5)
    seen: list[int] = []

    def slow_second_commit(_: object) -> None:  # the commit of the queued pair outlasts their callers' 0.5 s
        seen.append(1)
        if len(seen) == 2:
            time.sleep(0.45)

    event.listen(Engine, "commit", slow_second_commit)
    try:
        outcomes, _ = _append_all(audit, ["waiting-0", "waiting-1"], db)
    finally:
        event.remove(Engine, "commit", slow_second_commit)
    stored = {r.request_id: r for r in audit.records()}
    # each caller's answer is what the database holds: committed, and told so
    assert {rid: type(o).__name__ for rid, o in outcomes.items()} == dict.fromkeys(
        ["first", "waiting-0", "waiting-1"], "AuditRecord")
    assert all(stored[rid] == outcomes[rid] for rid in outcomes)
    audit.close()

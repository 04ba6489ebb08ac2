"""Several processes appending at once still make one unbroken chain (SQLite file and PostgreSQL)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from typing import Any

import pytest
from audit_test_keys import AUDIT_KEYS
from pg import throwaway_database

from serving.audit import AuditLog, AuditRecord, utc_now

WORKERS, EACH = 4, 50


def _append_many(url: str, worker: int, barrier: Any, checkpoints: Any) -> None:
    """One service process: opens its own log, waits for the others, then appends as fast as it can."""
    log = AuditLog(url, AUDIT_KEYS, checkpoints)
    barrier.wait(timeout=60)  # a sibling that died before the start must not hang the others
    for i in range(EACH):
        log.append(AuditRecord(
            request_id=f"w{worker}-{i:03d}", time=utc_now(), endpoint="/score", status_code=200,
            caller_key_id=None, product="diabetes", model_name="m", model_version="1", input_sha256=None,
            member_ref=None, features={"x": worker + i / EACH}, score=i / EACH, risk_class="A", decision="rated",
            reasons=None, error=None))
    log.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/audit.db"
        return
    request.getfixturevalue("postgres_url")  # the server is up
    with throwaway_database("chronorisk_concurrency") as db:
        yield db.url


@pytest.fixture
def appended(url, tmp_path) -> Iterator[AuditLog]:
    """The log after 4 spawned processes appended 50 records each, all at once, signing into one checkpoint file."""
    checkpoints = tmp_path / "checkpoints.jsonl"
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    procs = [ctx.Process(target=_append_many, args=(url, w, barrier, checkpoints), daemon=True)
             for w in range(WORKERS)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join(timeout=120)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
    assert [p.exitcode for p in procs] == [0] * WORKERS
    with AuditLog(url, AUDIT_KEYS, checkpoints) as log:
        yield log


def test_concurrent_appends_number_every_record_once_from_1_to_200(appended):
    assert [r.seq for r in appended.records()] == list(range(1, WORKERS * EACH + 1))


def test_concurrent_appends_lose_no_record(appended):
    assert len({r.request_id for r in appended.records()}) == WORKERS * EACH


def test_concurrent_appends_keep_one_unbroken_chain(appended):
    result = appended.verify()
    assert (result.ok, result.checked) == (True, WORKERS * EACH)


def test_every_writer_signs_into_one_checkpoint_file_that_vouches_for_the_whole_chain(appended):
    # the first record, the 100th and the 200th, and one at each writer's close (the head it saw then)
    result = appended.verify()
    assert (result.checkpoints >= 3 + 1, result.covered_seq) == (True, WORKERS * EACH)

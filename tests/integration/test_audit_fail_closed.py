"""Fail closed, recover without a restart: a database that goes away makes append raise, one that
comes back takes the next append through the same AuditLog (the service maps the raise to 503).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import psycopg2
import pytest
from audit_test_keys import AUDIT_KEYS
from pg import throwaway_database

from serving.audit import AuditLog, AuditRecord, AuditUnavailable, utc_now


def _record(request_id: str) -> AuditRecord:
    return AuditRecord(
        request_id=request_id, time=utc_now(), endpoint="/score", status_code=200, caller_key_id="0a1b2c3d",
        product="diabetes", model_name="m", model_version="1", input_sha256=None, member_ref=None,
        features={"bmi": 27.5}, score=0.12, risk_class="B", decision="rated", reasons=None, error=None)


@dataclass
class Scratch:
    """A throwaway database of this test's own, and a superuser connection to do things to it."""

    name: str
    url: str
    admin: psycopg2.extensions.connection

    def sql(self, statement: str) -> None:
        self.admin.cursor().execute(statement)

    def kill_connections(self) -> None:
        # The second argument waits (ms) until each backend has really gone.
        self.sql(f"SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = '{self.name}'")


@pytest.fixture
def scratch(postgres_url) -> Iterator[Scratch]:
    with throwaway_database("chronorisk_fail_closed") as db:
        yield Scratch(db.name, db.url, db.admin)


@pytest.fixture
def log(scratch, tmp_path) -> Iterator[AuditLog]:
    with AuditLog(scratch.url, AUDIT_KEYS, tmp_path / "checkpoints.jsonl") as audit:
        audit.append(_record("before"))
        yield audit


def test_append_raises_audit_unavailable_once_the_database_is_dropped(scratch, log):
    scratch.sql(f'DROP DATABASE "{scratch.name}" WITH (FORCE)')
    with pytest.raises(AuditUnavailable, match="not committed"):
        log.append(_record("after"))


def test_append_succeeds_on_the_same_log_after_its_connections_are_killed(scratch, log):
    scratch.kill_connections()
    assert log.append(_record("after")).seq == 2


def test_append_is_refused_while_the_database_refuses_connections(scratch, log):
    scratch.sql(f'ALTER DATABASE "{scratch.name}" WITH ALLOW_CONNECTIONS false')
    scratch.kill_connections()
    with pytest.raises(AuditUnavailable):
        log.append(_record("during"))


def test_after_an_outage_the_same_log_appends_again_and_the_chain_holds(scratch, log):
    scratch.sql(f'ALTER DATABASE "{scratch.name}" WITH ALLOW_CONNECTIONS false')
    scratch.kill_connections()
    with pytest.raises(AuditUnavailable):
        log.append(_record("during"))
    scratch.sql(f'ALTER DATABASE "{scratch.name}" WITH ALLOW_CONNECTIONS true')
    log.append(_record("after"))
    result = log.verify()
    assert ([r.request_id for r in log.records()], result.ok) == (["before", "after"], True)


def test_opening_a_log_on_a_closed_port_raises_audit_unavailable():
    with pytest.raises(AuditUnavailable, match="cannot be opened"):
        AuditLog("postgresql+psycopg2://postgres@127.0.0.1:1/nowhere")


def test_opening_a_sqlite_log_in_a_missing_folder_raises_audit_unavailable(tmp_path):
    with pytest.raises(AuditUnavailable, match="cannot be opened"):
        AuditLog(f"sqlite:///{tmp_path}/no/such/folder/audit.db")

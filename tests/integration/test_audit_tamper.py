"""`verify` names the first edited, deleted or reordered audit record, on SQLite and on PostgreSQL.

Tampering is done as an intruder would: SQL straight at the table, not through AuditLog.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from pg import throwaway_database
from sqlalchemy import MetaData, Table, create_engine

from serving.audit import AuditLog, AuditRecord, chain_hash


def _record(i: int) -> AuditRecord:
    return AuditRecord(
        request_id=f"req-{i:03d}", time=f"2025-03-01T09:00:{i:02d}.000+00:00", endpoint="/score", status_code=200,
        caller_key_id="0a1b2c3d", product="diabetes", model_name="chronorisk-diabetes", model_version="3",
        input_sha256=f"{i:064x}", member_ref=f"{i + 1000:064x}", features={"bmi": 20 + i / 7, "steps": None},
        score=i / 97, risk_class="B", decision="rated", reasons=[{"feature": "bmi", "contribution": i / 11}],
        error=None,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> Iterator[str]:
    """A log of 20 records, in a SQLite file or in a PostgreSQL database of its own."""
    if request.param == "sqlite":
        target = f"sqlite:///{tmp_path}/audit.db"
        _fill(target)
        yield target
        return
    request.getfixturevalue("postgres_url")  # the server is up
    with throwaway_database("chronorisk_tamper") as db:
        _fill(db.url)
        yield db.url


def _fill(url: str) -> None:
    with AuditLog(url) as log:
        for i in range(1, 21):
            log.append(_record(i))


def _sql(url: str, *statements: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    engine.dispose()


def _verify(url: str):
    with AuditLog(url) as log:
        return log.verify()


def test_an_untouched_log_of_20_records_verifies_ok(url):
    result = _verify(url)
    assert (result.ok, result.checked, result.first_bad_seq) == (True, 20, None)


def test_an_edited_score_is_reported_at_its_own_seq(url):
    _sql(url, "UPDATE audit_records SET score = 0.01 WHERE seq = 7")
    result = _verify(url)
    assert (result.ok, result.first_bad_seq, "edited" in result.reason) == (False, 7, True)


def test_an_edited_feature_vector_is_reported_at_its_own_seq(url):
    _sql(url, """UPDATE audit_records SET features = '{"bmi":22.0,"steps":null}' WHERE seq = 13""")
    assert _verify(url).first_bad_seq == 13


def test_an_edit_with_a_recomputed_hash_is_caught_by_the_next_record(url):
    with AuditLog(url) as log:
        original = log.get("req-007")
    assert original is not None
    forged = chain_hash(replace(original, decision="declined"))
    _sql(url, f"UPDATE audit_records SET decision = 'declined', record_hash = '{forged}' WHERE seq = 7")
    assert _verify(url).first_bad_seq == 8


def test_a_deleted_record_is_reported_at_the_record_after_the_gap(url):
    _sql(url, "DELETE FROM audit_records WHERE seq = 9")
    result = _verify(url)
    assert (result.first_bad_seq, "missing" in result.reason) == (10, True)


def test_a_deleted_first_record_is_reported(url):
    _sql(url, "DELETE FROM audit_records WHERE seq = 1")
    assert _verify(url).first_bad_seq == 2


def test_a_deletion_hidden_by_renumbering_is_caught_by_the_chain(url):
    _sql(url, "DELETE FROM audit_records WHERE seq = 9",
         "UPDATE audit_records SET seq = seq + 999 WHERE seq > 9",
         "UPDATE audit_records SET seq = seq - 1000 WHERE seq > 1000")
    result = _verify(url)
    assert (result.first_bad_seq, "prev_hash" in result.reason) == (9, True)


def test_two_swapped_records_are_reported_at_the_first_of_them(url):
    engine = create_engine(url)
    table = Table("audit_records", MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        five, twelve = (dict(r._mapping) for r in conn.execute(
            table.select().where(table.c.seq.in_([5, 12])).order_by(table.c.seq)))
        conn.execute(table.delete().where(table.c.seq.in_([5, 12])))
        conn.execute(table.insert(), [{**twelve, "seq": 5}, {**five, "seq": 12}])
    engine.dispose()
    result = _verify(url)
    assert (result.ok, result.first_bad_seq) == (False, 5)

"""`verify` names the first edited, deleted, reordered, re-chained or truncated audit record, on
SQLite and on PostgreSQL.

Tampering is done as an intruder would: SQL straight at the table, not through AuditLog, and
re-chaining with hash functions written out here (the old unkeyed SHA-256 chain, and HMAC under a
leaked key), not the project's own.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from audit_test_keys import AUDIT_KEYS
from pg import throwaway_database
from sqlalchemy import MetaData, Table, create_engine

from serving.audit import AuditLog, AuditRecord, chain_hash

EVERY = 5  # a signed checkpoint at records 1, 5, 10, 15, 20 and at close
_HASHED = ("request_id", "time", "endpoint", "status_code", "caller_key_id", "product", "model_name",
           "model_version", "input_sha256", "member_ref", "features", "score", "risk_class", "decision", "reasons",
           "error", "prev_hash")


def _record(i: int) -> AuditRecord:
    return AuditRecord(
        request_id=f"req-{i:03d}", time=f"2025-03-01T09:00:{i:02d}.000+00:00", endpoint="/score", status_code=200,
        caller_key_id="0a1b2c3d", product="diabetes", model_name="chronorisk-diabetes", model_version="3",
        input_sha256=f"{i:064x}", member_ref=f"{i + 1000:064x}", features={"bmi": 20 + i / 7, "steps": None},
        score=i / 97, risk_class="B", decision="rated", reasons=[{"feature": "bmi", "contribution": i / 11}],
        error=None,
    )


@pytest.fixture
def checkpoints(tmp_path) -> Path:
    return tmp_path / "checkpoints.jsonl"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path, checkpoints) -> Iterator[str]:
    """A log of 20 records, in a SQLite file or in a PostgreSQL database of its own."""
    if request.param == "sqlite":
        target = f"sqlite:///{tmp_path}/audit.db"
        _fill(target, checkpoints)
        yield target
        return
    request.getfixturevalue("postgres_url")  # the server is up
    with throwaway_database("chronorisk_tamper") as db:
        _fill(db.url, checkpoints)
        yield db.url


def _fill(url: str, checkpoints: Path) -> None:
    with AuditLog(url, AUDIT_KEYS, checkpoints, checkpoint_every=EVERY) as log:
        for i in range(1, 21):
            log.append(_record(i))


def _sql(url: str, *statements: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    engine.dispose()


def _verify(url: str, checkpoints: Path | None = None):
    from serving.audit_seal import AuditKeys

    with AuditLog(url, AuditKeys(AUDIT_KEYS.hmac_key, AUDIT_KEYS.public_key), checkpoints) as log:
        return log.verify()


def _unkeyed(prev: str, body: str) -> str:  # the chain function before keys: anyone can recompute it
    return hashlib.sha256((prev + body).encode()).hexdigest()


def _keyed(prev: str, body: str) -> str:  # HMAC under the real key, as someone who stole it would
    return hmac.new(AUDIT_KEYS.hmac_key, (prev + body).encode(), hashlib.sha256).hexdigest()


def _rechain(url: str, edit_seq: int, chain: Callable[[str, str], str]) -> None:
    """Set record `edit_seq`'s decision to 'declined', then recompute every hash from there on with `chain`
    (canonical JSON of the hashed fields, written out here), as an intruder with write access would."""
    engine = create_engine(url)
    table = Table("audit_records", MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        rows = [dict(r._mapping) for r in conn.execute(table.select().order_by(table.c.seq))]
        prev = rows[edit_seq - 2]["record_hash"] if edit_seq > 1 else "0" * 64
        for row in rows[edit_seq - 1:]:
            if row["seq"] == edit_seq:
                row["decision"] = "declined"
            row["prev_hash"] = prev
            body = {k: (json.loads(row[k]) if k in ("features", "reasons", "error") and row[k] is not None
                        else row[k]) for k in _HASHED}
            row["record_hash"] = prev = chain(prev, json.dumps(body, sort_keys=True, separators=(",", ":"),
                                                               ensure_ascii=False))
            conn.execute(table.update().where(table.c.seq == row["seq"]).values(
                decision=row["decision"], prev_hash=row["prev_hash"], record_hash=row["record_hash"]))
    engine.dispose()


def test_an_untouched_log_of_20_records_verifies_ok(url, checkpoints):
    result = _verify(url, checkpoints)
    assert (result.ok, result.checked, result.first_bad_seq, result.covered_seq) == (True, 20, None, 20)


def test_an_edit_rechained_with_the_old_unkeyed_function_is_caught_at_the_edit(url, checkpoints):
    _rechain(url, 7, _unkeyed)
    result = _verify(url, checkpoints)
    assert (result.ok, result.first_bad_seq, "keyed hash" in str(result.reason)) == (False, 7, True)


def test_an_edit_rechained_under_a_leaked_key_is_caught_by_the_next_signed_checkpoint(url, checkpoints):
    _rechain(url, 7, _keyed)
    chain_only = _verify(url, None)  # what the chain alone says: intact, which is why checkpoints exist
    result = _verify(url, checkpoints)
    assert (chain_only.first_bad_seq, "checkpoint" in str(chain_only.reason)) == (None, True)
    assert (result.ok, result.first_bad_seq, "re-chained" in str(result.reason)) == (False, 10, True)


def test_records_cut_off_the_end_are_reported_as_truncation(url, checkpoints):
    _sql(url, "DELETE FROM audit_records WHERE seq > 17")
    result = _verify(url, checkpoints)
    assert (result.ok, "truncated" in str(result.reason), result.checked) == (False, True, 17)


def test_a_removed_checkpoint_file_fails_verification(url, checkpoints):
    checkpoints.unlink()
    result = _verify(url, checkpoints)
    assert (result.ok, "no signed checkpoint" in str(result.reason)) == (False, True)


def test_a_checkpoint_signed_with_another_key_fails_verification(url, checkpoints):
    from serving.audit_seal import AuditKeys, CheckpointLog

    _sql(url, "DELETE FROM audit_records WHERE seq > 17")
    intruder = AuditKeys.generate()
    lines = checkpoints.read_text().splitlines()
    checkpoints.write_text("")  # the intruder rewrites the file: old heads out, their own in
    CheckpointLog(checkpoints).append(intruder, 17, json.loads(lines[0])["head"], "2025-03-01T10:00:00.000+00:00")
    result = _verify(url, checkpoints)
    assert (result.ok, "does not verify" in str(result.reason)) == (False, True)


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
    forged = chain_hash(replace(original, decision="declined"), AUDIT_KEYS.hmac_key)
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

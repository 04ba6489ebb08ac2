"""The audit chain's arithmetic, as an outside auditor would recompute it, on a real SQLite file."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import fields, replace

import pytest

from serving.audit import GENESIS_HASH, AuditLog, AuditRecord, chain_hash
from serving.audit_seal import AuditKeys

KEYS = AuditKeys.generate()

T0 = "2025-03-01T09:00:00.000+00:00"


def _record(request_id: str = "req-1", **changes) -> AuditRecord:
    base = AuditRecord(
        request_id=request_id, time=T0, endpoint="/score", status_code=200, caller_key_id="0a1b2c3d",
        product="diabetes", model_name="chronorisk-diabetes", model_version="3", input_sha256="ab" * 32,
        member_ref="cd" * 32, features={"bmi": 31.2, "steps_mean_90d": None}, score=0.1 + 0.2,
        risk_class="C", decision="rated", reasons=[{"feature": "bmi", "contribution": 0.42, "text": "BMI 31"}],
        error=None,
    )
    return replace(base, **changes)


@pytest.fixture
def log(tmp_path):
    with AuditLog(f"sqlite:///{tmp_path}/audit.db", KEYS) as audit:
        yield audit


def test_the_first_record_chains_to_64_zeros(log):
    assert log.append(_record()).prev_hash == GENESIS_HASH == "0" * 64


def test_the_record_hash_is_hmac_sha256_of_prev_hash_and_sorted_compact_json_of_the_other_fields(log):
    stored = log.append(_record())
    body = {f.name: getattr(stored, f.name) for f in fields(stored) if f.name not in ("seq", "record_hash")}
    text = stored.prev_hash + json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    by_hand = hmac.new(KEYS.hmac_key, text.encode(), hashlib.sha256).hexdigest()
    assert (stored.record_hash, stored.record_hash != hashlib.sha256(text.encode()).hexdigest()) == (by_hand, True)


def test_each_record_chains_to_the_hash_of_the_one_before(log):
    first = log.append(_record("a"))
    second = log.append(_record("b"))
    assert (second.seq, second.prev_hash) == (2, first.record_hash)


def test_chain_hash_reproduces_every_stored_hash(log):
    for i in range(3):
        log.append(_record(f"r{i}"))
    assert all(chain_hash(r, KEYS.hmac_key) == r.record_hash for r in log.records())


def test_a_float_reads_back_bit_identical(log):
    log.append(_record(score=0.1 + 0.2, features={"x": 1 / 3}))
    back = log.get("req-1")
    assert (back.score, back.features["x"]) == (0.30000000000000004, 1 / 3)


def test_a_nan_feature_is_stored_as_missing(log):
    assert log.append(_record(features={"hba1c_pct": float("nan")})).features == {"hba1c_pct": None}


def test_append_returns_exactly_what_get_reads_back(log):
    assert log.append(_record()) == log.get("req-1")


def test_a_time_that_is_not_utc_is_refused(log):
    with pytest.raises(ValueError, match="not UTC"):
        log.append(_record(time="2025-03-01T09:00:00+08:00"))


def test_a_non_finite_score_is_refused(log):
    with pytest.raises(ValueError, match="cannot be stored exactly"):
        log.append(_record(score=float("inf")))


def test_get_of_an_unknown_request_is_none(log):
    assert log.get("never-seen") is None


def test_records_filter_by_product_and_time_in_seq_order(log):
    log.append(_record("old", time="2025-01-01T00:00:00.000+00:00"))
    log.append(_record("other", time="2025-02-02T00:00:00.000+00:00", product="hypertension"))
    log.append(_record("new", time="2025-02-03T00:00:00.000+00:00"))
    log.append(_record("newer", time="2025-02-04T00:00:00.000+00:00"))
    ids = [r.request_id for r in log.records(since="2025-02", product="diabetes")]
    assert ids == ["new", "newer"]


def test_records_newest_first_with_a_limit_gives_the_latest(log):
    for i in range(5):
        log.append(_record(f"r{i}"))
    assert [r.request_id for r in log.records(limit=2, newest_first=True)] == ["r4", "r3"]


def test_an_empty_log_verifies_ok_with_nothing_checked(log):
    result = log.verify()
    assert (result.ok, result.checked, result.first_bad_seq) == (True, 0, None)


def test_verify_reports_the_head_hash_to_note_down(log):
    last = [log.append(_record(f"r{i}")) for i in range(3)][-1]
    assert log.verify().head_hash == last.record_hash


def test_a_log_opened_without_keys_is_read_only(tmp_path):
    with AuditLog(f"sqlite:///{tmp_path}/audit.db") as reader, pytest.raises(ValueError, match="read-only"):
        reader.append(_record())


def test_the_first_record_and_every_nth_are_signed_beside_the_database(tmp_path):
    with AuditLog(f"sqlite:///{tmp_path}/audit.db", KEYS, checkpoint_every=3) as audit:
        for i in range(7):
            audit.append(_record(f"r{i}"))
    lines = [json.loads(x) for x in (tmp_path / "audit.db.checkpoints.jsonl").read_text().splitlines()]
    assert [line["seq"] for line in lines] == [1, 3, 6, 7]  # 7: the head signed at close

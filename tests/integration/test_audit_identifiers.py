"""No raw identifier reaches the audit store: members appear only as keyed pseudonyms (member_ref)."""

from __future__ import annotations

import pytest
from audit_test_keys import AUDIT_KEYS

from chronorisk.data.pseudonym import member_ref
from serving.audit import AuditLog, AuditRecord, AuditUnavailable, utc_now

CANARY_ID = "110101199003071234"  # a Chinese resident ID-card number, made up
PEPPER = b"test-pepper-not-a-secret"


def _record(request_id: str, ref: str) -> AuditRecord:
    return AuditRecord(
        request_id=request_id, time=utc_now(), endpoint="/score", status_code=200, caller_key_id="0a1b2c3d",
        product="diabetes", model_name="m", model_version="1", input_sha256="ab" * 32, member_ref=ref,
        features={"age_years": 35.0, "bmi": 24.1}, score=0.05, risk_class="A", decision="rated",
        reasons=[{"feature": "bmi", "contribution": 0.01, "text": "BMI 24.1"}], error=None)


def _store_bytes(folder) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.iterdir()) if p.name.startswith("audit.db"))


def test_a_record_made_from_a_canary_id_leaves_no_trace_of_it_in_the_sqlite_file(tmp_path):
    ref = member_ref(CANARY_ID, PEPPER)
    with AuditLog(f"sqlite:///{tmp_path}/audit.db", AUDIT_KEYS) as log:
        log.append(_record("req-canary", ref))
    stored = _store_bytes(tmp_path)
    assert (ref.encode() in stored, CANARY_ID.encode() in stored) == (True, False)


def test_a_refused_append_does_not_echo_the_record_in_its_reason(tmp_path):
    ref = member_ref(CANARY_ID, PEPPER)
    with AuditLog(f"sqlite:///{tmp_path}/audit.db", AUDIT_KEYS) as log:
        log.append(_record("req-1", ref))
        with pytest.raises(AuditUnavailable) as refused:
            log.append(_record("req-1", ref))  # a duplicate request id cannot be committed
    assert (ref in str(refused.value), "BMI 24.1" in str(refused.value)) == (False, False)

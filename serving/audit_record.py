"""What one audit record is and how the keyed chain hashes it: shared by the writer
(serving/audit.py) and the verifier (serving/audit_verify.py), which import nothing of each other."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64
"""The prev_hash of the first record: there is nothing before it to chain to."""

_JSON_FIELDS = ("features", "reasons", "error")

@dataclass(frozen=True)
class AuditRecord:
    """One answer or refusal as the client saw it. Identifiers are pseudonyms or hashes, never raw."""

    request_id: str
    time: str
    endpoint: str
    status_code: int
    caller_key_id: str | None
    product: str | None
    model_name: str | None
    model_version: str | None
    input_sha256: str | None
    member_ref: str | None
    features: dict[str, float | None] | None
    score: float | None
    risk_class: str | None
    decision: str | None
    reasons: list[dict[str, Any]] | None
    error: dict[str, Any] | None
    seq: int | None = None
    prev_hash: str | None = None
    record_hash: str | None = None


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of re-walking the chain. `checked` counts the records read, the bad one included.

    `head_hash` is the last good record's hash: writing it down elsewhere (a ticket, a signed
    report) is what lets a later check notice records cut off the end, which no chain can see.
    """

    ok: bool
    checked: int
    first_bad_seq: int | None
    reason: str | None
    head_hash: str | None = None
    checkpoints: int = 0  # signed checkpoints that matched the chain
    covered_seq: int | None = None  # the highest seq a checkpoint vouches for (later records: not yet signed)


def utc_now() -> str:
    """The current time in the form `records(since=...)` compares as text (UTC, milliseconds)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _canonical_json(value: Any) -> str:
    # json writes floats with repr(), which round-trips every double exactly; allow_nan=False
    # because NaN and infinity are not JSON and would not read back.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def chain_hash(record: AuditRecord, key: bytes) -> str:
    """HMAC-SHA256 hex, under `key`, of prev_hash + canonical JSON of every field but seq and record_hash.

    Canonical: keys sorted, no spaces, UTF-8, floats as repr() (exact). seq is left out so that
    the chain, not the numbering, carries the order: renumbering rows after a deletion still
    breaks the next record's prev_hash. Keyed, because anyone can recompute a bare SHA-256 chain
    after editing a record; without the key no one can.
    """
    if record.prev_hash is None:
        raise ValueError("chain_hash needs the record's prev_hash")
    if not key:
        raise ValueError("chain_hash needs the audit HMAC key")
    body = {f.name: getattr(record, f.name) for f in fields(record) if f.name not in ("seq", "record_hash")}
    return hmac.new(key, (record.prev_hash + _canonical_json(body)).encode("utf-8"), hashlib.sha256).hexdigest()


def normalised(record: AuditRecord) -> AuditRecord:
    """The record as it will read back from the database, or ValueError for a caller's mistake.

    Feature values become plain floats (numpy scalars included) and NaN becomes None, because
    NaN is how a missing value reaches the model and JSON has no NaN. Everything else must
    already be JSON: a record that cannot be stored exactly is refused rather than altered.
    """
    if not record.request_id:
        raise ValueError("an audit record needs a request_id")
    try:
        stamp = datetime.fromisoformat(record.time)
    except (TypeError, ValueError) as err:
        raise ValueError(f"audit time {record.time!r} is not ISO 8601") from err
    offset = stamp.utcoffset()
    if offset is None or offset.total_seconds() != 0:
        raise ValueError(f"audit time {record.time!r} is not UTC")
    try:
        features = None if record.features is None else {
            str(k): (None if v is None or math.isnan(float(v)) else float(v)) for k, v in record.features.items()}
        score = None if record.score is None else float(record.score)
        out = replace(record, features=features, score=score, status_code=int(record.status_code))
        return from_row(to_row(out))
    except (TypeError, ValueError) as err:
        raise ValueError(f"audit record {record.request_id!r} cannot be stored exactly: {err}") from err


def to_row(record: AuditRecord) -> dict[str, Any]:
    # shallow: the nested fields are serialised just below, and asdict's deep copy of a 76-feature
    # vector and the reasons cost more than the rest of the append's Python work
    row = {f.name: getattr(record, f.name) for f in fields(record)}
    for name in _JSON_FIELDS:
        if row[name] is not None:
            row[name] = _canonical_json(row[name])
    if row["score"] is not None and not math.isfinite(row["score"]):
        raise ValueError("score is not finite")
    return row


def from_row(row: Any) -> AuditRecord:
    values: dict[str, Any] = dict(row._mapping) if hasattr(row, "_mapping") else dict(row)
    for name in _JSON_FIELDS:
        if values.get(name) is not None:
            values[name] = json.loads(values[name])
    kwargs: dict[str, Any] = {f.name: values.get(f.name) for f in fields(AuditRecord)}
    return AuditRecord(**kwargs)

"""`audit verify`: re-walk the keyed chain, then hold it against every signed checkpoint.

The chain alone finds edited, deleted and reordered records; it cannot see a chain recomputed by
someone holding the HMAC key, nor records cut off the end. The checkpoints can: a checkpoint
whose seq is past the log's end means truncation, one whose head differs from the record at its
seq means the chain was rewritten after it was signed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from serving.audit_record import GENESIS_HASH, VerifyResult, chain_hash, from_row
from serving.audit_seal import AuditKeys, CheckpointLog, public_key_id


class VerifiableLog(Protocol):
    """What verification reads of an audit log (serving/audit.py's AuditLog): its keys,
    its checkpoint file and its stored rows in seq order."""

    @property
    def keys(self) -> AuditKeys | None: ...
    @property
    def checkpoints(self) -> CheckpointLog | None: ...
    def raw_rows(self) -> Iterator[dict[str, Any]]: ...


def verify_log(log: VerifiableLog) -> VerifyResult:
    """The first record or checkpoint that breaks the log, and why; ok with the counts otherwise."""
    if log.keys is None:
        raise ValueError("verifying the audit chain needs its HMAC key and the checkpoints' public key")
    key = log.keys.hmac_key
    wanted = {} if log.checkpoints is None else {c.seq: c for c in log.checkpoints.read(log.keys.public_key)}
    heads: dict[int, str] = {}
    checked, prev_seq, prev_hash = 0, 0, GENESIS_HASH
    for row in log.raw_rows():
        checked += 1
        seq, head = row["seq"], (prev_hash if prev_seq else None)
        if seq != prev_seq + 1:
            why = (f"seq {seq} follows seq {prev_seq}: records missing" if prev_seq
                   else f"the first record has seq {seq}, not 1: records missing")
            return VerifyResult(False, checked, seq, why, head)
        if row["prev_hash"] != prev_hash:
            what = f"record {prev_seq}'s hash" if prev_seq else "the start of the chain"
            return VerifyResult(False, checked, seq,
                                f"prev_hash does not match {what}: records deleted or reordered", head)
        try:
            recomputed = chain_hash(from_row(row), key)
        except (TypeError, ValueError) as err:
            return VerifyResult(False, checked, seq, f"stored fields unreadable: {err}", head)
        if recomputed != row["record_hash"]:
            return VerifyResult(False, checked, seq, "record_hash is not the keyed hash of the record's contents: "
                                "edited, or re-chained without the key", head)
        if seq in wanted:
            heads[seq] = row["record_hash"]
        prev_seq, prev_hash = seq, row["record_hash"]
    last_hash = prev_hash if checked else None
    return _against_checkpoints(log, checked, prev_seq, last_hash, heads)


def _against_checkpoints(log: VerifiableLog, checked: int, last_seq: int, last_hash: str | None,
                         heads: dict[int, str]) -> VerifyResult:
    assert log.keys is not None
    if log.checkpoints is None:
        return VerifyResult(False, checked, None, "no checkpoint file is configured: truncation and re-chaining "
                            "cannot be ruled out", last_hash)
    points = list(log.checkpoints.read(log.keys.public_key))
    if checked and not points:
        return VerifyResult(False, checked, None, f"no signed checkpoint in {log.checkpoints.path}, though the log "
                            "has records: the checkpoint file was removed or never written", last_hash)
    mine = public_key_id(log.keys.public_key)
    covered = 0
    for point in points:
        if not point.valid_signature or point.key_id != mine:
            return VerifyResult(False, checked, None, f"checkpoint line {point.line} does not verify under the "
                                "audit public key: forged or altered", last_hash)
        if point.seq > last_seq:
            return VerifyResult(False, checked, last_seq + 1 if last_seq else 1,
                                f"truncated: a checkpoint signed at {point.time} vouches for {point.seq} records, "
                                f"the log has {last_seq}", last_hash)
        if heads.get(point.seq) != point.head:
            return VerifyResult(False, checked, point.seq,
                                f"re-chained: record {point.seq}'s hash is not the head signed at {point.time}",
                                last_hash)
        covered = max(covered, point.seq)
    return VerifyResult(True, checked, None, None, last_hash, checkpoints=len(points), covered_seq=covered or None)

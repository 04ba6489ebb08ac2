"""The audit keys of every server and log in the tests: fixed, so a test process, a spawned appender
and a server all chain and sign alike. Kept apart from service_fixtures so that a spawned appender
imports only this and the audit log (the test keys are public; a deployment's come from
`chronorisk audit init-keys`)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from serving.audit_seal import AuditKeys, save_audit_keys

_SIGNING = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
AUDIT_KEYS = AuditKeys(hmac_key=b"service-test-audit-hmac-key-7d21", public_key=_SIGNING.public_key(),
                       signing_key=_SIGNING)
_secrets: list[Path] = []


def audit_secrets_dir() -> Path:
    """A folder holding AUDIT_KEYS as the service reads them (CHRONORISK_SECRETS_DIR), made once per process."""
    if not _secrets:
        folder = Path(tempfile.mkdtemp(prefix="chronorisk-test-secrets-")) / "secrets"
        save_audit_keys(AUDIT_KEYS, folder)
        _secrets.append(folder)
    return _secrets[0]

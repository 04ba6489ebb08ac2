"""What makes the audit chain tamper-evident to someone who can write the database: its keys and
its signed checkpoints.

A plain hash chain can be recomputed by anyone with write access, and cutting records off the
end leaves a valid chain. So each record's hash is an HMAC under a secret kept outside the
database, and the chain head is signed with Ed25519 every N records and at shutdown into an
append-only JSON-lines file beside the database (RFC 6962/9162 signed tree heads are the model:
size, head, time, signature). `audit verify` checks the chain under the key and every checkpoint
against it, so a re-chained or truncated log fails even when the HMAC key has leaked.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

if TYPE_CHECKING:
    from chronorisk.settings import Settings

__all__ = ["HMAC_KEY_FILE", "SIGNING_KEY_FILE", "AuditKeyError", "AuditKeys", "Checkpoint", "CheckpointLog",
           "create_audit_keys", "keys_for", "load_audit_keys", "private_file", "public_key_id", "save_audit_keys"]

HMAC_KEY_FILE = "audit_hmac.key"
SIGNING_KEY_FILE = "audit_signing.pem"
PUBLIC_KEY_FILE = "audit_signing.pub.pem"
_DOMAIN = b"chronorisk-audit-checkpoint-v1\n"  # signatures over checkpoints cannot be replayed as anything else


class AuditKeyError(RuntimeError):
    """The audit keys are missing or unreadable; the service refuses to start without them."""


@dataclass(frozen=True)
class AuditKeys:
    """The chain's HMAC key and the checkpoints' signing key (None where only verifying)."""

    hmac_key: bytes
    public_key: Ed25519PublicKey
    signing_key: Ed25519PrivateKey | None = None

    @classmethod
    def generate(cls) -> AuditKeys:
        """Fresh keys held in memory only (tests, or a first run that then saves them)."""
        signing = Ed25519PrivateKey.generate()
        return cls(hmac_key=secrets.token_bytes(32), public_key=signing.public_key(), signing_key=signing)


def public_key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def private_file(path: Path, data: bytes) -> None:
    """Write a new file readable by its owner only (0600), in a folder only its owner can enter (0700)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def create_audit_keys(folder: Path) -> AuditKeys:
    """Generate and save both keys in `folder` (0700; files 0600). Refuses to overwrite existing keys."""
    return save_audit_keys(AuditKeys.generate(), folder)


def save_audit_keys(keys: AuditKeys, folder: Path) -> AuditKeys:
    """Write `keys` into `folder` as `load_audit_keys` reads them; never over existing keys."""
    if (folder / HMAC_KEY_FILE).exists() or (folder / SIGNING_KEY_FILE).exists():
        raise AuditKeyError(f"audit keys already exist in {folder}; refusing to replace them")
    if keys.signing_key is None:
        raise AuditKeyError("only keys that can sign are saved")
    private_file(folder / HMAC_KEY_FILE, keys.hmac_key.hex().encode() + b"\n")
    private_file(folder / SIGNING_KEY_FILE, keys.signing_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    private_file(folder / PUBLIC_KEY_FILE, keys.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return keys


def load_audit_keys(folder: Path, hmac_key: bytes | None = None, public_key_file: Path | None = None) -> AuditKeys:
    """The keys from `folder`; `hmac_key` (from the environment) overrides the file's. With
    `public_key_file` and no signing key in the folder, the keys verify but cannot sign."""
    try:
        key = hmac_key or bytes.fromhex((folder / HMAC_KEY_FILE).read_text().strip())
        signing_path = folder / SIGNING_KEY_FILE
        if signing_path.exists():
            loaded = serialization.load_pem_private_key(signing_path.read_bytes(), password=None)
            if not isinstance(loaded, Ed25519PrivateKey):
                raise AuditKeyError(f"{signing_path} is not an Ed25519 private key")
            public = loaded.public_key() if public_key_file is None else _public(public_key_file)
            return AuditKeys(hmac_key=key, public_key=public, signing_key=loaded)
        if public_key_file is None:
            raise AuditKeyError(f"no audit signing key in {folder} and no public key given")
        return AuditKeys(hmac_key=key, public_key=_public(public_key_file))
    except (OSError, ValueError) as err:
        raise AuditKeyError(f"audit keys in {folder} cannot be read ({type(err).__name__}); "
                            "create them with `chronorisk audit init-keys`") from err


def _public(path: Path) -> Ed25519PublicKey:
    loaded = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(loaded, Ed25519PublicKey):
        raise AuditKeyError(f"{path} is not an Ed25519 public key")
    return loaded


@dataclass(frozen=True)
class Checkpoint:
    """One signed statement 'the chain had `seq` records and ended in `head` at `time`'."""

    line: int
    seq: int
    head: str
    time: str
    key_id: str
    valid_signature: bool


def _message(body: dict[str, Any]) -> bytes:
    return _DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


class CheckpointLog:
    """The append-only file of signed chain heads. Every process appending to the same audit
    database appends here too, each line written whole under an exclusive lock."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, keys: AuditKeys, seq: int, head: str, time: str) -> None:
        if keys.signing_key is None:
            raise AuditKeyError("these audit keys cannot sign checkpoints")
        body = {"v": 1, "seq": seq, "head": head, "time": time, "key_id": public_key_id(keys.public_key)}
        sig = base64.b64encode(keys.signing_key.sign(_message(body))).decode()
        line = (json.dumps({**body, "sig": sig}, sort_keys=True) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the lock

    def read(self, public_key: Ed25519PublicKey) -> Iterator[Checkpoint]:
        """Every checkpoint in file order, with whether its signature verifies under `public_key`.
        A line that is not a checkpoint at all counts as one with a bad signature."""
        with contextlib.suppress(FileNotFoundError), open(self.path, encoding="utf-8") as lines:
            for number, text in enumerate(lines, start=1):
                try:
                    entry = json.loads(text)
                    body = {k: entry[k] for k in ("v", "seq", "head", "time", "key_id")}
                    sig = base64.b64decode(entry["sig"], validate=True)
                except (ValueError, KeyError, TypeError):
                    yield Checkpoint(number, -1, "", "", "", False)
                    continue
                try:
                    public_key.verify(sig, _message(body))
                    ok = True
                except InvalidSignature:
                    ok = False
                yield Checkpoint(number, int(body["seq"]), str(body["head"]), str(body["time"]),
                                 str(body["key_id"]), ok)


def keys_for(settings: Settings) -> AuditKeys:
    """The service's audit keys from `settings.secrets_dir` (CHRONORISK_AUDIT_KEY, if set, is the HMAC
    key). Missing keys are generated there only in development, and the log says so; anywhere
    else they must be created on purpose (`chronorisk audit init-keys`), so a deployment cannot
    silently start a chain under a key nobody kept."""
    folder = settings.secrets_dir
    env_key = settings.audit_key.get_secret_value().encode() if settings.audit_key is not None else None
    if not (folder / SIGNING_KEY_FILE).exists() and settings.environment == "development":
        created = create_audit_keys(folder)
        logging.getLogger("chronorisk.audit").warning(
            "development: generated local audit keys in %s (0600); keep them to verify this audit log", folder)
        return created if env_key is None else AuditKeys(env_key, created.public_key, created.signing_key)
    if not (folder / SIGNING_KEY_FILE).exists():
        raise AuditKeyError(f"no audit keys in {folder} (environment {settings.environment}); create them with "
                            "`chronorisk audit init-keys` or set CHRONORISK_SECRETS_DIR")
    return load_audit_keys(folder, env_key)

"""API keys (design decision 15): created once by `chronorisk keys create`, stored only as hashes.

A key reads `crk_<key_id>_<secret>`; the file keeps the key's SHA-256, its name and the products it
may score, so a leaked file grants nothing. The service re-reads the file when it changes on disk,
so `keys revoke` takes effect without a restart.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["ApiKey", "AuthResult", "KeyStore", "KeyStoreError"]

PREFIX = "crk"
_KEY_ID = re.compile(r"[0-9a-f]{8}")
_MAX_PRESENTED = 256  # far above a real key (56 chars); longer input is malformed, not worth hashing
MISSING = "missing API key"
INVALID = "invalid API key"  # one message for every 401 after the first, so a caller learns nothing


class KeyStoreError(RuntimeError):
    """The key file exists but cannot be read or parsed: refuse everything (the service answers 503)."""


@dataclass(frozen=True)
class ApiKey:
    """What may be shown about a key: never the key itself, nor its hash."""

    key_id: str
    name: str
    products: tuple[str, ...]
    created: str
    revoked: bool


@dataclass(frozen=True)
class AuthResult:
    """The verdict on one presented key; key_id is set only when the key's id names a real key."""

    ok: bool
    status: int
    key_id: str | None
    reason: str


def _digest(key: str) -> str:
    # Plain SHA-256, not a salted slow KDF: those defend guessable passwords, while the secret
    # here is 256 random bits, so no table or brute force can invert its hash. Leaving the pepper
    # out also means rotating the pepper does not invalidate every key.
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class KeyStore:
    """The keys in one JSON file: create, list, revoke, and authenticate a presented key."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int, int] | None = None
        self._entries: dict[str, dict[str, Any]] = {}
        # Compared against when the presented id is unknown, so both paths do the same work.
        self._dummy = _digest(secrets.token_urlsafe(32))

    # reading -----------------------------------------------------------------------------------

    def _current(self) -> dict[str, dict[str, Any]]:
        """The entries by key id, re-read if the file changed (a rename gives it a new inode)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            with self._lock:
                self._stamp, self._entries = None, {}
                return self._entries
        stamp = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
        with self._lock:
            if stamp != self._stamp:
                self._entries = self._read()
                self._stamp = stamp
            return self._entries

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return {entry["key_id"]: entry for entry in data["keys"]}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise KeyStoreError(f"key file {self.path} is unreadable: {type(err).__name__}") from err

    @staticmethod
    def _public(entry: dict[str, Any]) -> ApiKey:
        return ApiKey(key_id=entry["key_id"], name=entry["name"], products=tuple(entry["products"]),
                      created=entry["created"], revoked=bool(entry["revoked"]))

    def list(self) -> list[ApiKey]:
        """Every key, revoked ones included, in creation order; no secret or hash is exposed."""
        return [self._public(e) for e in self._current().values()]

    # writing -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _editing(self) -> Iterator[dict[str, dict[str, Any]]]:
        """Read-modify-write under an exclusive lock, so two CLI runs at once lose no key."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                entries = self._read()
                yield entries
                self._write(entries)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write(self, entries: dict[str, dict[str, Any]]) -> None:
        """Write atomically: a reader sees the old file or the new one, never half of either."""
        body = json.dumps({"version": 1, "keys": list(entries.values())}, indent=2) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:  # mkstemp creates it 0600
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # make the rename itself durable
        finally:
            os.close(dir_fd)

    # builtins.list: inside this class `list` names the method above
    def create(self, name: str, products: builtins.list[str]) -> tuple[str, ApiKey]:
        """A new key for `products`: (the plaintext key, to be shown once, and its public record)."""
        allowed = tuple(dict.fromkeys(p.strip() for p in products if p.strip()))
        if not name.strip():
            raise ValueError("a key needs a name (who or what uses it)")
        if not allowed:
            raise ValueError("a key needs at least one product")
        with self._editing() as entries:
            key_id = secrets.token_hex(4)
            while key_id in entries:
                key_id = secrets.token_hex(4)
            plaintext = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
            entry = {"key_id": key_id, "name": name.strip(), "products": list(allowed), "created": _now(),
                     "revoked": False, "revoked_at": None, "sha256": _digest(plaintext)}
            entries[key_id] = entry
        return plaintext, self._public(entry)

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key for good (revoking twice is harmless); KeyError naming the id if unknown."""
        with self._editing() as entries:
            if key_id not in entries:
                raise KeyError(f"no API key with id {key_id!r}")
            entry = entries[key_id]
            if not entry["revoked"]:
                entry["revoked"], entry["revoked_at"] = True, _now()
        return self._public(entry)

    # checking ----------------------------------------------------------------------------------

    def authenticate(self, presented: str | None, product: str | None) -> AuthResult:
        """200 for a live key allowed `product` (or any key when product is None), else 401 or 403.

        Every malformed, unknown, wrong or revoked key gets the same 401 message, and the hash
        comparison runs (constant time) whether or not the id exists, so neither the answer nor
        its timing tells an attacker which ids are real.
        """
        if not presented:
            return AuthResult(False, 401, None, MISSING)
        entries = self._current()
        key_id = _key_id_of(presented)
        entry = entries.get(key_id) if key_id is not None else None
        expected = entry["sha256"] if entry is not None else self._dummy
        candidate = _digest(presented) if len(presented) <= _MAX_PRESENTED else _digest("")
        matches = hmac.compare_digest(candidate, expected)
        if entry is None:
            return AuthResult(False, 401, None, INVALID)
        if not matches or entry["revoked"]:
            return AuthResult(False, 401, entry["key_id"], INVALID)
        if product is not None and product not in entry["products"]:
            return AuthResult(False, 403, entry["key_id"], f"this API key may not score product {product!r}")
        return AuthResult(True, 200, entry["key_id"], "ok")


def _key_id_of(presented: str) -> str | None:
    """The id part of a well-formed key, else None."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not _KEY_ID.fullmatch(parts[1]) or not parts[2]:
        return None
    return parts[1]

"""Throwaway PostgreSQL databases for the integration tests: created, handed out, dropped."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg2

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


@dataclass(frozen=True)
class Database:
    name: str
    url: str  # SQLAlchemy URL with the psycopg2 driver (2.1 defaults to psycopg 3, not installed)
    admin: Any  # an autocommit connection to the maintenance database, for the test's own SQL


@contextmanager
def throwaway_database(prefix: str) -> Iterator[Database]:
    """A new database named `<prefix>_<random>`, dropped (connections forced off) afterwards."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = psycopg2.connect(dbname="postgres", **PG)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        yield Database(name, f"postgresql+psycopg2://{PG['user']}@{PG['host']}:{PG['port']}/{name}", admin)
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

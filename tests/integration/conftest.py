"""Real services for integration tests: a throwaway PostgreSQL database per session.

PostgreSQL must answer on 127.0.0.1:5432; if it does not, the fixture starts the cluster (and
`make test` installs it first through scripts/ensure_services.sh). Tests never skip for it.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator

import psycopg2
import pytest

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def _pg_answers() -> bool:
    try:
        psycopg2.connect(dbname="postgres", connect_timeout=3, **PG).close()
        return True
    except psycopg2.OperationalError:
        return False


def _start_cluster() -> None:
    if shutil.which("pg_ctlcluster") is None:
        subprocess.run(["bash", "scripts/ensure_services.sh"], check=True)
        return
    versions = subprocess.run(["ls", "/etc/postgresql"], capture_output=True, text=True).stdout.split()
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[0], "main", "start"], check=False)
    for _ in range(30):
        if _pg_answers():
            return
        time.sleep(1)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    if not _pg_answers():
        _start_cluster()
    assert _pg_answers(), "PostgreSQL does not answer on 127.0.0.1:5432 and could not be started"
    name = f"chronorisk_test_{secrets.token_hex(4)}"
    admin = psycopg2.connect(dbname="postgres", **PG)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        # SQLAlchemy 2.1 defaults to psycopg 3; name the driver we install.
        yield f"postgresql+psycopg2://{PG['user']}@{PG['host']}:{PG['port']}/{name}"
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

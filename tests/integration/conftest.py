"""Real services for integration tests: a throwaway PostgreSQL database per session.

PostgreSQL must answer on 127.0.0.1:5432; if it does not, the fixture starts the cluster (and
`make test` installs it first through scripts/ensure_services.sh). Tests never skip for it.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator

import psycopg2
import pytest
from pg import PG, throwaway_database


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
    with throwaway_database("chronorisk_test") as db:
        yield db.url


# The real scoring service (tests/integration/test_service_*.py): one trained champion, one set of
# API keys and one `bentoml serve` per session; helpers live in service_fixtures.py.

@pytest.fixture(scope="session")
def model_store(tmp_path_factory):
    from service_fixtures import build_model_store

    return build_model_store(tmp_path_factory.mktemp("service-store"))


@pytest.fixture(scope="session")
def api_keys(tmp_path_factory):
    from service_fixtures import create_keys

    return create_keys(tmp_path_factory.mktemp("service-keys") / "keys.json")


@pytest.fixture(scope="session")
def audit_url(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('service-audit') / 'audit.db'}"


@pytest.fixture(scope="session")
def scoring_server(model_store, api_keys, audit_url, tmp_path_factory):
    """`bentoml serve` of the service on the session's champion, ready (GET /readyz 200)."""
    from service_fixtures import running_server, service_env

    run = tmp_path_factory.mktemp("service-run")
    with running_server(service_env(model_store.tracking_uri, audit_url, api_keys.path, home=run / "bentoml"),
                        run / "server.log") as server:
        yield server

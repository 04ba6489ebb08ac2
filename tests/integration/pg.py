"""Throwaway PostgreSQL databases for the integration tests: created, handed out, dropped."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
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


@dataclass
class Cluster:
    """A PostgreSQL cluster of this test's own, so stopping it (SIGSTOP) hangs nobody else's database."""

    url: str
    data: Path

    def processes(self) -> list[psutil.Process]:
        leader = psutil.Process(int((self.data / "postmaster.pid").read_text().split()[0]))
        return [leader, *leader.children(recursive=True)]

    def stop_the_world(self) -> None:
        """SIGSTOP the postmaster and every backend: connections stay open, nothing answers."""
        for proc in self.processes():
            proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        for proc in self.processes():
            proc.send_signal(signal.SIGCONT)


@contextmanager
def private_cluster() -> Iterator[Cluster]:
    """initdb + pg_ctl start on a free port in a temporary folder, as the postgres user (initdb refuses
    root); stopped and removed afterwards, resumed first if a test left it stopped."""
    bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
    root = Path(tempfile.mkdtemp(prefix="chronorisk-pg-"))
    shutil.chown(root, "postgres", "postgres")
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = root / "data"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run([*as_pg, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
                   check=True, capture_output=True)
    subprocess.run([*as_pg, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"), "-o",
                    f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                   check=True, capture_output=True)
    cluster = Cluster(f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres", data)
    try:
        yield cluster
    finally:
        with contextlib.suppress(psutil.Error, FileNotFoundError):
            cluster.resume()
        subprocess.run([*as_pg, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)

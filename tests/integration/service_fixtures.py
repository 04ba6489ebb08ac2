"""Helpers for the real-server tests: a trained champion in a throwaway MLflow store, API keys,
and `bentoml serve` started as a child process in its own process group.

Nothing here mocks the model or the server: the tests talk HTTP to the same command an insurer
would run, on a free port bound to 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import psutil
from audit_test_keys import audit_secrets_dir

from chronorisk.data.contracts import load_raw
from chronorisk.model.product import load_product
from chronorisk.model.registry import connect
from chronorisk.synthetic.cohort import load_profile, synthesize
from serving.keys import KeyStore
from serving.process import free_port
from serving.process import stop_server as stop_process
from training.gate import promote
from training.snapshot import build_snapshot
from training.train import train_product

REPO = Path(__file__).resolve().parents[2]
PEPPER = "service-test-pepper-0f3c9a"  # CHRONORISK_ID_PEPPER of every server and batch run here
EXTRACT = date(2024, 12, 31)  # the default profile's extract date
MEMBERS, SEED = 3_000, 13
MAX_BATCH, MAX_BODY_BYTES = 10, 300_000
READY_LIMIT_S = 60.0
BODY_TIMEOUT_S = 3.0  # every test server's CHRONORISK_BODY_TIMEOUT_S


@dataclass(frozen=True)
class ModelStore:
    """A cohort, a SQLite MLflow store with artifacts beside it, and the diabetes champion's version."""

    root: Path
    cohort: Path
    db: Path
    artifact_root: Path
    version: str
    tables: dict[str, pd.DataFrame]

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.db}"


@dataclass(frozen=True)
class Keys:
    path: Path
    diabetes: str
    diabetes_id: str
    hypertension: str
    hypertension_id: str
    revoked: str
    revoked_id: str


@dataclass
class Server:
    url: str
    log: Path
    process: subprocess.Popen[bytes]
    env: dict[str, str] = field(repr=False)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


def build_model_store(root: Path) -> ModelStore:
    """Generate the cohort, build the diabetes snapshot, train one model and make it champion."""
    cohort = root / "cohort"
    synthesize(members=MEMBERS, seed=SEED, out_dir=cohort,
               profile=load_profile(REPO / "experiments/profiles/default.yaml"), workers=2)
    spec = load_product("diabetes")
    snapshot = root / "diabetes.parquet"
    build_snapshot(cohort, spec, snapshot, extract_date=EXTRACT, pepper=PEPPER.encode(), chunk_members=MEMBERS,
                   progress=False)
    db, artifact_root = root / "mlflow.db", root / "mlartifacts"
    client = connect(f"sqlite:///{db}")
    version = train_product(spec, snapshot, artifact_root=artifact_root, pepper=PEPPER.encode(), seed=7).version
    assert version is not None, "training registered no model version"
    promote(client, "diabetes", spec.gate, root / "promotions.jsonl", to_version=version, reason="test champion",
            by="tests")
    raw, _ = load_raw(cohort, extract_date=EXTRACT, pepper=PEPPER.encode())
    tables = {name: getattr(raw, name) for name in
              ("members", "applications", "consultations", "lab_results", "wearable_daily")}
    return ModelStore(root=root, cohort=cohort, db=db, artifact_root=artifact_root, version=version, tables=tables)


def copy_store(store: ModelStore, dst: Path) -> tuple[str, Path]:
    """A copy of the MLflow database and its artifacts, the artifact URIs rewritten to the copy.

    MLflow records absolute `file://` artifact locations in the database, so a plain file copy
    would still read the original artifacts; rewriting the paths makes the copy self-contained.
    """
    import sqlite3

    dst.mkdir(parents=True, exist_ok=True)
    shutil.copytree(store.artifact_root, dst / "mlartifacts")
    db = dst / "mlflow.db"
    shutil.copy2(store.db, db)
    old, new = str(store.artifact_root.resolve()), str((dst / "mlartifacts").resolve())
    with sqlite3.connect(db) as conn:
        for table, column in (("experiments", "artifact_location"), ("runs", "artifact_uri"),
                              ("model_versions", "source"), ("model_versions", "storage_location"),
                              ("logged_models", "artifact_location")):
            columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            if column in columns:
                conn.execute(f"UPDATE {table} SET {column} = replace({column}, ?, ?)", (old, new))
    return f"sqlite:///{db}", dst / "mlartifacts"


def create_keys(path: Path) -> Keys:
    store = KeyStore(path)
    diabetes, d = store.create("tests: diabetes underwriting", ["diabetes"])
    hypertension, h = store.create("tests: hypertension underwriting", ["hypertension"])
    revoked, r = store.create("tests: a former diabetes client", ["diabetes"])
    store.revoke(r.key_id)
    return Keys(path=path, diabetes=diabetes, diabetes_id=d.key_id, hypertension=hypertension,
                hypertension_id=h.key_id, revoked=revoked, revoked_id=r.key_id)


def service_env(tracking_uri: str, audit_url: str, keys_file: Path, products: tuple[str, ...] = ("diabetes",),
                home: Path | None = None) -> dict[str, str]:
    """The environment of a server or batch run: the store, audit log, keys, pepper and limits."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "CHRONORISK_AUDIT_URL": audit_url,
           "CHRONORISK_KEYS_FILE": str(keys_file), "CHRONORISK_ID_PEPPER": PEPPER,
           "CHRONORISK_SECRETS_DIR": str(audit_secrets_dir()),
           "CHRONORISK_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S), "CHRONORISK_REFUSAL_AUDIT_INTERVAL_S": "1",
           "CHRONORISK_ENVIRONMENT": "test", "CHRONORISK_SERVE_PRODUCTS": ",".join(products),
           "CHRONORISK_MAX_BATCH": str(MAX_BATCH), "CHRONORISK_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
           "BENTOML_DO_NOT_TRACK": "True", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    if home is not None:  # BentoML's home, and the temporary folders models are fetched into, stay in the test's
        (home / "tmp").mkdir(parents=True, exist_ok=True)
        env.update(BENTOML_HOME=str(home), TMPDIR=str(home / "tmp"))
    return env


def start_server(env: dict[str, str], log: Path) -> Server:
    """`bentoml serve` of the real service on a free port, in its own process group."""
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bentoml", "serve", "serving.service:ChronoriskService",
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return Server(url=f"http://127.0.0.1:{port}", log=log, process=process, env=env)


def readyz(server: Server) -> int | None:
    """The /readyz status, or None while nothing answers on the port."""
    try:
        return httpx.get(f"{server.url}/readyz", timeout=5).status_code
    except httpx.TransportError:
        return None


def wait_ready(server: Server, limit_s: float = READY_LIMIT_S) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited with {server.process.returncode} before it was ready:\n"
                               f"{server.log_tail()}")
        if readyz(server) == 200:
            return
        if "NOT READY" in server.log_text():  # the service logs why it will never be ready; no need to wait
            raise RuntimeError(f"the server says it is not ready:\n{server.log_tail()}")
        time.sleep(0.5)
    raise RuntimeError(f"the server was not ready within {limit_s:.0f} s:\n{server.log_tail()}")


def wait_answering(server: Server, limit_s: float = READY_LIMIT_S) -> None:
    """Until the port answers /readyz with anything at all (a not-ready server answers 503)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited with {server.process.returncode}:\n{server.log_tail()}")
        if readyz(server) is not None:
            return
        time.sleep(0.5)
    raise RuntimeError(f"nothing answered on {server.url} within {limit_s:.0f} s:\n{server.log_tail()}")


@contextlib.contextmanager
def running_server(env: dict[str, str], log: Path) -> Iterator[Server]:
    """A ready server for the block, stopped (workers included) however the block ends."""
    server = start_server(env, log)
    try:
        wait_ready(server)
        yield server
    finally:
        stop_server(server)


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant. BentoML's workers start their own sessions, so a
    signal to the leader's process group does not reach them: a worker outlives a killed leader
    and goes on answering on the inherited socket."""
    try:
        leader = psutil.Process(pid)
        tree = [leader, *leader.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for proc in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(tree, timeout=10)


def stop_server(server: Server) -> None:
    """Stop the server and any worker the leader left behind (`serving.process.stop_server`)."""
    stop_process(server.process)


def post(server: Server, path: str, body: Any = None, *, key: str | None = None, content: bytes | None = None,
         headers: dict[str, str] | None = None) -> httpx.Response:
    sent = {**({"x-api-key": key} if key is not None else {}), **(headers or {})}
    if content is not None:
        return httpx.post(server.url + path, content=content, headers=sent, timeout=60)
    return httpx.post(server.url + path, json=body, headers=sent, timeout=60)

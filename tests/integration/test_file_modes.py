"""Every file the project writes with health data or secrets is owner-only (0600, folders 0700),
whatever the caller's umask: the real `chronorisk` commands run as subprocesses under umask 022,
and the real server's audit files are read as it left them."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_fixtures import PEPPER, REPO
from test_service_bad_inputs import base_request

CLI = [str(Path(sys.executable).with_name("chronorisk"))]  # the installed entry point


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
                          preexec_fn=lambda: os.umask(0o022))  # the usual umask: new files 0644 unless we say so


def _modes(root: Path) -> dict[str, str]:
    """Every path under root (root included) with its permission bits, e.g. {'x/a.parquet': '0o600'}."""
    out = {".": oct(stat.S_IMODE(root.stat().st_mode))}
    for path in root.rglob("*"):
        out[str(path.relative_to(root))] = oct(stat.S_IMODE(path.stat().st_mode))
    return out


def _loose(modes: dict[str, str], root: Path) -> list[str]:
    return [f"{p} {m}" for p, m in modes.items() if m != ("0o700" if (root / p).is_dir() else "0o600")]


@pytest.fixture(scope="module")
def written(model_store, api_keys, tmp_path_factory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("file-modes")
    env = {**os.environ, "CHRONORISK_ID_PEPPER": PEPPER, "CHRONORISK_ENVIRONMENT": "test",
           "MLFLOW_TRACKING_URI": model_store.tracking_uri, "CHRONORISK_KEYS_FILE": str(root / "keys" / "keys.json")}
    requests = root / "requests.jsonl"
    requests.write_text(json.dumps(base_request(model_store)) + "\n")
    (root / "scored").mkdir(mode=0o700)  # `score` writes into an existing folder
    runs = {
        "synth": _run(["data", "synth", "--members", "300", "--seed", "3", "--out", str(root / "raw")], env),
        "validate": _run(["data", "validate", str(root / "raw")], env),
        "score": _run(["score", "--product", "diabetes", "--input", str(requests),
                       "--out", str(root / "scored" / "scored.jsonl")], env),
        "card": _run(["model-card", "--product", "diabetes", "--out", str(root / "cards")], env),
        "keys": _run(["keys", "create", "--name", "modes", "--products", "diabetes"], env),
        "mlflow": _run(["model-card", "--product", "diabetes", "--out", str(root / "cards2")],
                       {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'store' / 'mlflow.db'}"}),
    }
    return {"root": root, "runs": runs}


@pytest.mark.parametrize("folder, command", [("raw", "validate"), ("scored", "score"), ("cards", "card"),
                                             ("keys", "keys")])
def test_a_command_writes_owner_only_files_under_umask_022(written, folder, command):
    run = written["runs"][command]
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    root = written["root"] / folder
    modes = _modes(root)
    assert (len(modes) > 1, _loose(modes, root)) == (True, [])


def test_a_new_mlflow_store_is_created_owner_only(written):
    db = written["root"] / "store" / "mlflow.db"
    assert db.exists(), written["runs"]["mlflow"].stderr[-2000:]
    assert oct(stat.S_IMODE(db.stat().st_mode)) == "0o600"


def test_the_servers_audit_database_and_checkpoints_are_owner_only(scoring_server, audit_url, model_store,
                                                                   api_keys):
    answer = httpx.post(scoring_server.url + "/score", json=base_request(model_store), timeout=60,
                        headers={"x-api-key": api_keys.diabetes})  # at least one record, so a checkpoint
    assert answer.status_code == 200, answer.text[:300]
    db = Path(audit_url.removeprefix("sqlite:///"))
    files = [p for p in db.parent.iterdir() if p.name.startswith(db.name)]
    assert {p.name.removeprefix(db.name) for p in files} >= {"", "-wal", ".checkpoints.jsonl"}
    assert [f"{p.name} {oct(stat.S_IMODE(p.stat().st_mode))}" for p in files
            if stat.S_IMODE(p.stat().st_mode) != 0o600] == []

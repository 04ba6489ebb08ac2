"""Starting and stopping a real `bentoml serve` process on 127.0.0.1, for the demo and the load bench.

The leader runs in its own process group; its workers start sessions of their own, so stopping
also kills any worker the leader left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import psutil
from pydantic import TypeAdapter, ValidationError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


TELEMETRY_SETTING = "CHRONORISK_BENTOML_TELEMETRY"


def launch_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment to start `bentoml serve` with: BentoML's usage statistics (sent to its makers
    from the leader and its CLI) off, unless CHRONORISK_BENTOML_TELEMETRY turns them on. BentoML reads
    its switch once, as its CLI starts, so it must be set here, before, not by the service module."""
    out = dict(env)
    try:
        telemetry = TypeAdapter(bool).validate_python(out.get(TELEMETRY_SETTING, "false"))
    except ValidationError:
        raise ValueError(f"{TELEMETRY_SETTING}: not true or false") from None
    if not telemetry:
        out["BENTOML_DO_NOT_TRACK"] = "True"
    return out


def start_server(target: str, env: dict[str, str], log_file: Path, ready_s: float = 90.0
                 ) -> tuple[subprocess.Popen[bytes], str]:
    """Start `bentoml serve target` and wait until /readyz answers 200; (process, base url)."""
    env = launch_env(env)
    port = free_port()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "wb") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen([sys.executable, "-m", "bentoml", "serve", target, "--host", "127.0.0.1", "--port",
                                 str(port)], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + ready_s
    while time.time() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop_server(proc)
    raise RuntimeError(f"{target} did not become ready in {ready_s:.0f} s; see {log_file}:\n"
                       + log_file.read_text(errors="replace")[-2000:])


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Stop the leader, which stops its workers; then kill any worker left. BentoML's workers run in
    their own sessions, so the leader's process group does not hold them."""
    try:
        workers = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        workers = []
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    for worker in workers:
        with contextlib.suppress(psutil.NoSuchProcess):
            worker.kill()

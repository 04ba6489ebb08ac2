"""A champion that cannot be served keeps the real server not ready, says why in its log, and
never crashes it; it is never replaced by another model.

Two servers beside the session's: one asked to serve a product with no champion, one whose
registered model file had one digit edited after registration (the edit LightGBM would load
silently, reliability.md). Both are started at once and watched for READY_WATCH_S. A scoring
request for a product whose champion is not loaded, or while the key file cannot be read, gets
an audited 503, never a server error.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from service_fixtures import (
    Server,
    copy_store,
    post,
    readyz,
    service_env,
    start_server,
    stop_server,
    wait_answering,
)

from serving.audit import AuditLog
from serving.examples import standard_applicant

READY_WATCH_S = 15.0


@dataclass(frozen=True)
class NotReady:
    missing_champion: Server
    tampered: Server
    tampered_file: Path
    missing_audit: str
    tampered_audit: str
    tampered_keys: Path  # the tampered server's own copy of the session's keys, free to break


def edit_one_digit(model_file: Path) -> None:
    """Change the first digit of the first split threshold: same size, still parses, other scores."""
    data = bytearray(model_file.read_bytes())
    at = data.index(b"threshold=") + len(b"threshold=")
    while not chr(data[at]).isdigit():
        at += 1
    data[at] = ord(str((int(chr(data[at])) + 1) % 10))
    model_file.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def not_ready(model_store, api_keys, tmp_path_factory) -> Iterator[NotReady]:
    root = tmp_path_factory.mktemp("not-ready")
    keys = root / "keys.json"
    shutil.copy2(api_keys.path, keys)
    missing = start_server(service_env(model_store.tracking_uri, f"sqlite:///{root}/audit-missing.db", api_keys.path,
                                      products=("diabetes", "hypertension"), home=root / "bentoml-missing"),
                           root / "missing-champion.log")
    servers = [missing]
    try:
        uri, artifacts = copy_store(model_store, root / "tampered-store")
        [model_file] = list(artifacts.glob("**/artifacts/model.txt"))
        edit_one_digit(model_file)
        tampered = start_server(service_env(uri, f"sqlite:///{root}/audit-tampered.db", keys,
                                            home=root / "bentoml-tampered"), root / "tampered.log")
        servers.append(tampered)
        for server in servers:
            wait_answering(server)
        yield NotReady(missing, tampered, model_file, f"sqlite:///{root}/audit-missing.db",
                       f"sqlite:///{root}/audit-tampered.db", keys)
    finally:
        for server in servers:
            stop_server(server)


def _watch(server: Server, seconds: float) -> set[int | None]:
    """Every /readyz status seen over `seconds`."""
    seen: set[int | None] = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen.add(readyz(server))
        time.sleep(1.0)
    return seen


def _wait_for_line(server: Server, pattern: str, seconds: float = 30.0) -> list[str]:
    deadline = time.monotonic() + seconds
    while True:
        lines = [line for line in server.log_text().splitlines() if re.search(pattern, line)]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.5)


def test_a_missing_champion_keeps_the_service_not_ready_with_the_reason(not_ready):
    assert _watch(not_ready.missing_champion, READY_WATCH_S) == {503}


def test_a_missing_champion_is_named_in_the_log_with_the_reason(not_ready):
    lines = _wait_for_line(not_ready.missing_champion, r"NOT READY")
    assert [bool(re.search(r"hypertension champion .*no version 'champion' in the registry", line))
            for line in lines] == [True], lines


def test_a_missing_champion_does_not_crash_the_server(not_ready):
    _watch(not_ready.missing_champion, 2.0)
    assert not_ready.missing_champion.process.poll() is None, not_ready.missing_champion.log_tail()


def test_a_tampered_model_keeps_the_service_not_ready(not_ready):
    assert _watch(not_ready.tampered, 5.0) == {503}


def test_a_tampered_model_is_named_in_one_log_line(not_ready):
    lines = _wait_for_line(not_ready.tampered, r"NOT READY")
    assert [("model.txt" in line and "changed after registration" in line) for line in lines] == [True], lines


def test_a_tampered_model_does_not_crash_the_server(not_ready):
    _watch(not_ready.tampered, 2.0)
    assert not_ready.tampered.process.poll() is None, not_ready.tampered.log_tail()


def _refusal(server: Server, audit_url: str, product: str, key: str) -> tuple[int, dict, object]:
    """POST /score for `product`; the answer and its audit record."""
    answer = post(server, "/score", {"product": product, "applicant": standard_applicant()}, key=key)
    log = AuditLog(audit_url)
    try:
        record = log.get(answer.json()["request_id"])
    finally:
        log.close()
    return answer.status_code, answer.json(), record


def test_scoring_a_product_whose_champion_is_not_loaded_is_an_audited_503(not_ready, api_keys):
    assert _wait_for_line(not_ready.missing_champion, r"NOT READY"), not_ready.missing_champion.log_tail()
    status, body, record = _refusal(not_ready.missing_champion, not_ready.missing_audit, "hypertension",
                                    api_keys.hypertension)
    assert status == 503
    assert [(e["field"], e["rule"]) for e in body["errors"]] == [("product", "model_not_loaded")]
    assert "no champion version is registered" in body["errors"][0]["message"]
    assert record is not None and record.status_code == 503


def test_the_503_for_a_model_that_failed_to_load_shows_no_path(not_ready, api_keys):
    """The tampered model's load error names the temporary folder it was fetched into: that stays in the
    server log; the client hears only what kind of failure it was."""
    assert _wait_for_line(not_ready.tampered, r"NOT READY"), not_ready.tampered.log_tail()
    status, body, record = _refusal(not_ready.tampered, not_ready.tampered_audit, "diabetes", api_keys.diabetes)
    assert status == 503 and [(e["field"], e["rule"]) for e in body["errors"]] == [("product", "model_not_loaded")]
    assert record is not None and record.status_code == 503
    listing = httpx.get(f"{not_ready.tampered.url}/products", headers={"x-api-key": api_keys.diabetes}, timeout=30)
    [product] = listing.json()["products"]
    for told in (body["errors"][0]["message"], product["load_error"]):
        assert "failed its integrity checks" in told
        assert "/" not in told and "model.txt" not in told, told
    assert "model.txt" in "".join(_wait_for_line(not_ready.tampered, r"NOT READY"))  # the log keeps the detail


def test_an_unreadable_key_file_is_an_audited_503_not_a_server_error(not_ready, api_keys):
    not_ready.tampered_keys.write_text("{ not json")
    status, body, record = _refusal(not_ready.tampered, not_ready.tampered_audit, "diabetes", api_keys.diabetes)
    assert status == 503
    assert [(e["field"], e["rule"]) for e in body["errors"]] == [("server", "key_store_unavailable")]
    assert record is not None and record.status_code == 503
    assert json.dumps(body).find(api_keys.diabetes) == -1

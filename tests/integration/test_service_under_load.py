"""The real server under load (reliability.md): concurrency 8 and 16 without an error, a fast 503
beyond the concurrency limit rather than a timeout, and kill -9 in the middle of a load after
which every answer a client received has its audit record and the chain still verifies.

Requests are real applicants of the session's cohort, sent by threads over HTTP; nothing here
reads the service's own code paths except the audit log, which is what a complaint handler reads.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from audit_test_keys import AUDIT_KEYS
from service_fixtures import Server, kill_tree, running_server, service_env

from serving.audit import AuditLog
from serving.examples import applicant_request

APPLICATION_DATE = date(2022, 6, 30)
PER_LEVEL = 48  # requests per concurrency level: enough for a p99 of the level, few enough for 2 cores


def _bodies(store: Any, n: int) -> list[bytes]:
    members = store.tables["members"].sort_values("member_id")
    out = []
    for member_id, birth in zip(members["member_id"], members["birth_date"], strict=True):
        if 25 <= (APPLICATION_DATE - birth.date()).days / 365.25 <= 85:
            body = {"product": "diabetes", "applicant": applicant_request(store.tables, str(member_id),
                                                                          APPLICATION_DATE)}
            out.append(json.dumps(body).encode())
        if len(out) == n:
            return out
    raise AssertionError(f"fewer than {n} scoreable members in the cohort")


def _send(url: str, body: bytes, key: str, timeout: float = 60.0) -> tuple[int, dict[str, Any], float]:
    start = time.perf_counter()
    r = httpx.post(url + "/score", content=body, timeout=timeout,
                   headers={"content-type": "application/json", "x-api-key": key})
    return r.status_code, r.json(), time.perf_counter() - start


def _load(url: str, bodies: list[bytes], key: str, concurrency: int) -> list[tuple[int, dict[str, Any], float]]:
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(lambda b: _send(url, b, key), bodies))


@pytest.fixture(scope="module")
def bodies(model_store) -> list[bytes]:
    return _bodies(model_store, PER_LEVEL)


@pytest.fixture(scope="module")
def loaded(scoring_server, api_keys, bodies) -> dict[int, list[tuple[int, dict[str, Any], float]]]:
    return {c: _load(scoring_server.url, bodies, api_keys.diabetes, c) for c in (8, 16)}


@pytest.mark.parametrize("concurrency", [8, 16])
def test_load_gets_no_error(loaded, concurrency):
    statuses = [status for status, _, _ in loaded[concurrency]]
    assert statuses == [200] * PER_LEVEL, f"non-200 answers at concurrency {concurrency}: {statuses}"


@pytest.mark.parametrize("concurrency", [8, 16])
def test_load_p99_is_stated_and_well_inside_the_timeout(loaded, concurrency):
    p99 = float(np.percentile([s for _, _, s in loaded[concurrency]], 99))
    print(f"concurrency {concurrency}: p99 {p99 * 1000:.0f} ms over {PER_LEVEL} requests")
    assert p99 < 30.0, f"p99 {p99:.1f} s at concurrency {concurrency} reaches the 30 s traffic timeout"


def test_load_answers_equal_the_same_requests_sent_one_at_a_time(loaded, scoring_server, api_keys, bodies):
    """Concurrency changes nothing in a score: the answers at 16 are those of a serial run, bit for bit."""
    serial = [_send(scoring_server.url, b, api_keys.diabetes)[1] for b in bodies[:8]]
    under_load = [answer for _, answer, _ in loaded[16][:8]]
    assert [a["probability"] for a in under_load] == [a["probability"] for a in serial]
    assert [a["reasons"] for a in under_load] == [a["reasons"] for a in serial]


def test_every_answer_under_load_is_audited_with_its_score(loaded, audit_url):
    log = AuditLog(audit_url)
    try:
        for level in loaded.values():
            for _, answer, _ in level:
                record = log.get(answer["request_id"])
                assert record is not None, f"no audit record for {answer['request_id']}"
                assert (record.status_code, record.score) == (200, answer["probability"])
    finally:
        log.close()


# --- beyond the concurrency limit: a fast 503, not a queue that times out


@pytest.fixture(scope="module")
def small_server(model_store, api_keys, tmp_path_factory) -> Iterator[tuple[Server, str]]:
    run = tmp_path_factory.mktemp("service-small")
    audit = f"sqlite:///{run / 'audit.db'}"
    env = {**service_env(model_store.tracking_uri, audit, api_keys.path, home=run / "bentoml"),
           "CHRONORISK_MAX_CONCURRENCY": "2"}
    with running_server(env, run / "server.log") as server:
        yield server, audit


@pytest.fixture(scope="module")
def overloaded(small_server, api_keys, bodies) -> list[tuple[int, dict[str, Any], float]]:
    server, _ = small_server
    return _load(server.url, bodies[:32], api_keys.diabetes, 16)


def test_beyond_the_limit_requests_are_refused_with_503_overloaded(overloaded):
    statuses = sorted({status for status, _, _ in overloaded})
    assert statuses == [200, 503], f"expected some 200 and some 503 answers, got {statuses}"
    for status, answer, _ in overloaded:
        if status == 503:
            assert [e["rule"] for e in answer["errors"]] == ["overloaded"]


def test_an_overload_refusal_is_fast(overloaded):
    refusals = [seconds for status, _, seconds in overloaded if status == 503]
    assert max(refusals) < 2.0, f"slowest 503 took {max(refusals):.2f} s: it waited instead of refusing"


def test_overload_refusals_are_audited_in_the_aggregate_and_answers_one_by_one(overloaded, small_server):
    """Load is shed before the key is looked at, so those 503s are counted in the aggregate record of
    pre-authentication refusals (serving/refusals.py); every answer given is recorded on its own."""
    _, audit = small_server
    time.sleep(2.5)  # the test servers write the aggregate every second
    log = AuditLog(audit)
    try:
        shed = [answer for status, answer, _ in overloaded if status == 503 and log.get(answer["request_id"]) is None]
        for status, answer, _ in overloaded:
            record = log.get(answer["request_id"])
            if status == 200:
                assert record is not None and record.status_code == 200
        counted = sum(c["count"] for r in log.records() if r.endpoint == "(before authentication)"
                      for c in r.error["counts"] if (c["status"], c["rule"]) == (503, "overloaded"))
        assert counted >= len(shed) > 0
    finally:
        log.close()


# --- kill -9 in the middle of a load, then restart on the same audit log


@pytest.fixture(scope="module")
def killed_mid_load(model_store, api_keys, bodies, tmp_path_factory) -> tuple[list[dict[str, Any]], str, Path]:
    """Answers received before the server's whole process group was SIGKILLed, and the audit URL."""
    run = tmp_path_factory.mktemp("service-kill")
    audit = f"sqlite:///{run / 'audit.db'}"
    env = service_env(model_store.tracking_uri, audit, api_keys.path, home=run / "bentoml")
    received: list[dict[str, Any]] = []
    lock = threading.Lock()
    with running_server(env, run / "server.log") as server:

        def client(offset: int) -> None:
            for i in range(offset, 10_000, 4):
                try:
                    status, answer, _ = _send(server.url, bodies[i % len(bodies)], api_keys.diabetes, timeout=10)
                except (httpx.TransportError, json.JSONDecodeError):
                    return  # the server is gone: what this client received is what it holds
                with lock:
                    received.append({"status": status, "body_index": i % len(bodies), **answer})

        threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(received) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        kill_tree(server.process.pid)  # the leader and its workers, all at once, as a power cut would
        for t in threads:
            t.join(timeout=30)
    assert len(received) >= 20, f"only {len(received)} answers before the kill"
    return received, audit, run


def test_every_answer_received_before_kill_9_has_its_audit_record(killed_mid_load):
    received, audit, _ = killed_mid_load
    log = AuditLog(audit)
    try:
        missing = [a["request_id"] for a in received if log.get(a["request_id"]) is None]
    finally:
        log.close()
    assert not missing, f"{len(missing)} of {len(received)} answers have no audit record: {missing[:3]}"


def test_after_kill_9_the_chain_verifies_and_a_restarted_server_appends_to_it(killed_mid_load, model_store,
                                                                             api_keys, bodies):
    received, audit, run = killed_mid_load
    log = AuditLog(audit, AUDIT_KEYS)
    try:
        assert log.verify().ok
        before = len(list(log.records()))
    finally:
        log.close()
    with running_server(service_env(model_store.tracking_uri, audit, api_keys.path, home=run / "bentoml2"),
                        run / "server2.log") as server:
        status, answer, _ = _send(server.url, bodies[0], api_keys.diabetes)
    assert status == 200
    same_body = [a for a in received if a["body_index"] == 0 and a["status"] == 200]
    assert same_body, "client 0 sends body 0 first, and at least 20 answers arrived before the kill"
    assert answer["probability"] == same_body[0]["probability"]  # a restart changes no score
    log = AuditLog(audit, AUDIT_KEYS)
    try:
        result = log.verify()
        assert result.ok, result
        assert len(list(log.records())) == before + 1
    finally:
        log.close()


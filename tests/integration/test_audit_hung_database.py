"""A hung audit database (PostgreSQL SIGSTOPped, connections open, nothing answering) gives fast
503s within the client-side timeout, not BentoML's 30 s 504; once it resumes, every 503 has a
linked record saying so, so no record claims an answer a client did not get, and the chain holds.

The cluster is the test's own (stopping the shared one would hang everyone's tests); the server
is the real one, its audit log on that cluster.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from audit_test_keys import AUDIT_KEYS
from pg import private_cluster
from service_fixtures import running_server, service_env
from test_service_bad_inputs import base_request

from serving.audit import AuditLog

TIMEOUT_S = 1.0  # CHRONORISK_AUDIT_TIMEOUT_S of this server
HUNG_REQUESTS = 6


def _score(url: str, body: bytes, key: str) -> tuple[int, dict[str, Any], float]:
    start = time.perf_counter()
    r = httpx.post(url + "/score", content=body, timeout=60,
                   headers={"content-type": "application/json", "x-api-key": key})
    return r.status_code, r.json(), time.perf_counter() - start


@pytest.fixture(scope="module")
def hung(model_store, api_keys, tmp_path_factory) -> dict[str, Any]:
    run = tmp_path_factory.mktemp("service-hung-db")
    body = json.dumps(base_request(model_store)).encode()
    with private_cluster() as cluster:
        env = {**service_env(model_store.tracking_uri, cluster.url, api_keys.path, home=run / "bentoml"),
               "CHRONORISK_AUDIT_TIMEOUT_S": str(TIMEOUT_S),
               "CHRONORISK_AUDIT_CHECKPOINTS": str(run / "checkpoints.jsonl")}
        with running_server(env, run / "server.log") as server:
            before = [_score(server.url, body, api_keys.diabetes) for _ in range(2)]
            cluster.stop_the_world()
            try:
                with ThreadPoolExecutor(max_workers=3) as pool:
                    during = list(pool.map(lambda _: _score(server.url, body, api_keys.diabetes),
                                           range(HUNG_REQUESTS)))
            finally:
                cluster.resume()
            assert all("request_id" in a for _, a, _ in during), [(s, a, t) for s, a, t in during]
            linked: dict[str, Any] = {}
            deadline = time.monotonic() + 30
            with AuditLog(cluster.url) as reader:
                while time.monotonic() < deadline and len(linked) < len(during):
                    linked = {a["request_id"]: reader.get(f"{a['request_id']}.undelivered") for _, a, _ in during}
                    linked = {k: v for k, v in linked.items() if v is not None}
                    time.sleep(0.5)
                originals = {a["request_id"]: reader.get(a["request_id"]) for _, a, _ in [*before, *during]}
        with AuditLog(cluster.url, AUDIT_KEYS, run / "checkpoints.jsonl") as log:
            verified = log.verify()
    return {"before": before, "during": during, "linked": linked, "originals": originals, "verified": verified}


def test_answers_before_the_hang_are_scored_and_recorded(hung):
    assert [(s, hung["originals"][a["request_id"]] is not None) for s, a, _ in hung["before"]] == [(200, True)] * 2


def test_with_the_database_hung_every_request_gets_a_503_audit_unavailable(hung):
    assert [(s, [e["rule"] for e in a.get("errors", [])]) for s, a, _ in hung["during"]] == [
        (503, ["audit_unavailable"])] * HUNG_REQUESTS


def test_the_503s_come_within_the_client_side_timeout_not_after_bentomls_30_s(hung):
    # the first waits its deadline; the others, queued behind it, are refused at once once it has timed out
    slowest = max(seconds for _, _, seconds in hung["during"])
    print(f"hung database: 503 latencies {sorted(round(t, 2) for _, _, t in hung['during'])} s")  # for the notes
    assert slowest < TIMEOUT_S + 1.5, f"slowest 503 took {slowest:.2f} s"


def test_every_503_gets_a_linked_record_saying_what_the_client_received(hung):
    assert sorted((k, v.status_code, v.error["links"]) for k, v in hung["linked"].items()) == sorted(
        (a["request_id"], 503, a["request_id"]) for _, a, _ in hung["during"])


def test_the_chain_verifies_after_the_database_resumes(hung):
    assert (hung["verified"].ok, hung["verified"].reason) == (True, None)

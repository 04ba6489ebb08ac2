"""A server of two workers becomes ready (each worker's ready mark set: serving/readiness.py) and answers
every new connection, whichever worker takes it, with the version the launcher pinned."""

from __future__ import annotations

import httpx
from service_fixtures import running_server, service_env

from serving.examples import standard_applicant

CONNECTIONS = 40


def test_two_workers_get_ready_and_each_answers_with_the_pinned_version(model_store, api_keys, tmp_path):
    env = {**service_env(model_store.tracking_uri, f"sqlite:///{tmp_path}/audit.db", api_keys.path,
                         home=tmp_path / "bentoml"),
           "CHRONORISK_WORKERS": "2", "CHRONORISK_SERVE_VERSIONS": f"diabetes={model_store.version}"}
    body = {"product": "diabetes", "applicant": standard_applicant()}
    with running_server(env, tmp_path / "workers.log") as server:
        answers = []
        for _ in range(CONNECTIONS):  # a new connection each time: any worker may take it
            with httpx.Client(base_url=server.url, timeout=60) as client:
                answers.append(client.post("/score", json=body, headers={"x-api-key": api_keys.diabetes}))
    assert [a.status_code for a in answers] == [200] * CONNECTIONS
    assert {a.json()["model_version"] for a in answers} == {str(model_store.version)}

"""The real server's answers: equal to the offline batch run bit for bit, explained in plain words
with reasons that raise risk, additive TreeSHAP, the champion's calibration, and the read-only
product listing. Expected values come from the registry and from arithmetic done here.
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pytest
from service_fixtures import REPO, ModelStore, Server, post, service_env

from chronorisk.model.registry import CHAMPION, connect, resolve
from serving.examples import applicant_request

APPLICATION_DATE = date(2022, 6, 30)
MEMBERS_SCORED = 30  # the first of them go to the batch comparison
MEMBERS_BATCH = 20
RATED = {"accept_with_loading", "refer", "decline"}
MAX_REASONS = 5


def scoreable_members(store: ModelStore, n: int) -> list[str]:
    """The first n members (by id) aged 25 to 85 at the application date, so the contracts accept them."""
    members = store.tables["members"].sort_values("member_id")
    chosen = []
    for member_id, birth in zip(members["member_id"], members["birth_date"], strict=True):
        if 25 <= (APPLICATION_DATE - birth.date()).days / 365.25 <= 85:
            chosen.append(str(member_id))
        if len(chosen) == n:
            return chosen
    raise AssertionError(f"fewer than {n} scoreable members in the cohort")


@pytest.fixture(scope="module")
def requests_sent(model_store) -> list[dict[str, Any]]:
    members = scoreable_members(model_store, MEMBERS_SCORED)
    return [{"product": "diabetes", "applicant": json.loads(json.dumps(
        applicant_request(model_store.tables, m, APPLICATION_DATE)))} for m in members]


@pytest.fixture(scope="module")
def answers(scoring_server, api_keys, requests_sent) -> list[httpx.Response]:
    return [post(scoring_server, "/score", body, key=api_keys.diabetes) for body in requests_sent]


@pytest.fixture(scope="module")
def champion_calibration(model_store, tmp_path_factory) -> dict[str, Any]:
    """calibration.json of the champion, as registered: read from the model's own artifact folder in
    the store, whose hash the registry recorded (the test checks it, then reads the two numbers)."""
    client = connect(model_store.tracking_uri)
    version = resolve(client, "diabetes", CHAMPION)
    dst = tmp_path_factory.mktemp("champion")
    folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=version.source, dst_path=str(dst))) / "artifacts"
    path = folder / "calibration.json"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == version.tags["sha256.calibration.json"]
    return dict(json.loads(path.read_text()))


def _comparable(status: int, result: dict[str, Any]) -> tuple[Any, ...]:
    return (status, result.get("model_version"), result.get("probability"), result.get("risk_class"),
            result.get("decision"), result.get("reasons"))


def test_service_scores_equal_the_offline_batch_bit_for_bit(answers, requests_sent, model_store, api_keys,
                                                             audit_url, tmp_path):
    source, out = tmp_path / "requests.jsonl", tmp_path / "scores.jsonl"
    source.write_text("".join(json.dumps(body) + "\n" for body in requests_sent[:MEMBERS_BATCH]))
    cli = Path(sys.executable).with_name("chronorisk")
    done = subprocess.run([str(cli), "score", "--input", str(source), "--product", "diabetes", "--out", str(out)],
                          cwd=REPO, env=service_env(model_store.tracking_uri, audit_url, api_keys.path, home=tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    offline = [json.loads(line) for line in out.read_text().splitlines()]
    online = [(r.status_code, r.json()) for r in answers[:MEMBERS_BATCH]]
    assert [_comparable(o["status"], o.get("result") or {}) for o in offline] == [
        _comparable(status, body if status == 200 else {}) for status, body in online]


def test_every_answer_with_a_decision_has_a_reason_that_raises_risk_in_plain_words(answers):
    rated = [r.json() for r in answers if r.status_code == 200 and r.json()["decision"] in RATED]
    assert rated, "the sample has no rated, referred or declined applicant; pick other members"
    unexplained = [a["request_id"] for a in rated
                   if not any(x["contribution"] > 0 and x["text"].strip() for x in a["reasons"])]
    assert unexplained == []


def test_no_reason_describes_data_coverage_or_a_testing_pattern(answers):
    """How much data there is, or when a test was done, describes the record, not the applicant."""
    from features.registry import default_registry

    registry = default_registry()
    given = {r["feature"] for a in answers for r in a.json().get("reasons", [])}
    assert given and all(registry[f].kind == "measurement" for f in given), sorted(given)


def test_reasons_come_largest_contribution_first(answers):
    orders = [[x["contribution"] for x in r.json()["reasons"]] for r in answers if r.status_code == 200]
    assert [o for o in orders if o != sorted(o, reverse=True)] == []


def test_no_answer_gives_more_than_five_reasons(answers):
    assert max(len(r.json()["reasons"]) for r in answers if r.status_code == 200) <= MAX_REASONS


@pytest.fixture(scope="module")
def explained(scoring_server, api_keys, requests_sent) -> list[dict[str, Any]]:
    return [post(scoring_server, "/explain", body, key=api_keys.diabetes).json() for body in requests_sent[:10]]


def test_explain_contributions_add_up_to_the_raw_score(explained):
    gaps = [abs(e["base_value"] + math.fsum(e["contributions"].values()) - e["raw_score"]) for e in explained]
    assert max(gaps) <= 1e-9


def test_the_score_is_the_champion_calibration_of_the_explained_raw_score(explained, answers, champion_calibration):
    def by_hand(raw: float) -> float:
        """Platt: sigmoid(a raw + b); discrete hazard: one minus surviving each year's sigmoid(a raw + c_k)."""
        a = champion_calibration["slope"]
        if champion_calibration["method"] == "platt":
            return 1.0 / (1.0 + math.exp(-(a * raw + champion_calibration["intercept"])))
        survive = 1.0
        for c in champion_calibration["period_intercepts"]:
            survive *= 1.0 - 1.0 / (1.0 + math.exp(-(a * raw + c)))
        return 1.0 - survive

    expected = [by_hand(e["raw_score"]) for e in explained]
    served = [r.json()["probability"] for r in answers[:len(explained)]]
    # math.exp and numpy's exp may differ in the last bit, nothing more
    assert all(math.isclose(s, x, rel_tol=1e-12, abs_tol=0.0) for s, x in zip(served, expected, strict=True)), (
        served, expected)


def test_explain_answers_with_the_champion_version(explained, model_store):
    assert {e["model_version"] for e in explained} == {model_store.version}


def test_products_lists_the_champion_version_and_input_schema(scoring_server: Server, api_keys, model_store):
    answer = httpx.get(f"{scoring_server.url}/products", headers={"x-api-key": api_keys.diabetes}, timeout=30)
    listed = answer.json()
    products = [(p["product"], p["model_name"], p["model_version"], p["loaded"]) for p in listed["products"]]
    schema = listed["input_schema"]
    assert (answer.status_code, products, {"applicant_id", "demographics", "questionnaire"} <= set(
        schema.get("required", [])), {"consultations", "lab_results", "wearable_daily"} <= set(
        schema.get("properties", {}))) == (200, [("diabetes", "diabetes-risk", model_store.version, True)], True, True)


def test_products_without_a_key_is_401(scoring_server: Server):
    assert httpx.get(f"{scoring_server.url}/products", timeout=30).status_code == 401


class _Marker:
    """Unpickling this would create a file: proof, if the file stays absent, that nothing was unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def test_a_pickle_typed_request_gets_415(scoring_server: Server, api_keys, tmp_path):
    marker = tmp_path / "unpickled"
    body = pickle.dumps({"product": "diabetes", "applicant": _Marker(marker)})
    answer = post(scoring_server, "/score", key=api_keys.diabetes, content=body,
                  headers={"content-type": "application/vnd.bentoml+pickle"})
    assert (answer.status_code, marker.exists()) == (415, False)

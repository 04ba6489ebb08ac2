"""The real server on a model trained from an examination extract (issue 15): an applicant with
an examination and an OGTT but no questionnaire answers is scored, because the model uses none,
equal to the batch scorer bit for bit; and a diastolic of 24 mmHg is refused with the very rule
and message the import quarantines it with."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from examination_fixtures import MAPPING, examination_extract
from examination_fixtures import PEPPER as IMPORT_PEPPER
from service_fixtures import PEPPER, Server, post, running_server, service_env

from chronorisk.data.contracts import rule_message
from chronorisk.data.extract import import_extract
from chronorisk.data.mapping import load_mapping, with_source
from chronorisk.model.product import load_product
from chronorisk.model.registry import connect
from serving.keys import KeyStore
from training.extract_snapshot import build_extract_snapshot
from training.gate import promote
from training.train import train_product

PRODUCT = "diabetes_screening"


@pytest.fixture(scope="module")
def screening_server(tmp_path_factory) -> Iterator[tuple[Server, str, str]]:
    root = tmp_path_factory.mktemp("screening")
    csv = root / "exam.csv"
    examination_extract().to_csv(csv, index=False)
    import_extract(with_source(load_mapping(MAPPING), csv), MAPPING, root / "raw", pepper=IMPORT_PEPPER)
    spec = load_product(PRODUCT)
    build_extract_snapshot(root / "raw", spec, root / "snapshot.parquet", pepper=IMPORT_PEPPER)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = connect(uri)
    version = train_product(spec, root / "snapshot.parquet", artifact_root=root / "mlartifacts",
                            pepper=PEPPER.encode(), seed=7).version
    assert version is not None
    promote(client, PRODUCT, spec.gate, root / "promotions.jsonl", to_version=version,  # random outcome: by hand
            reason="random outcome", by="tests")
    key, _ = KeyStore(root / "keys.json").create("tests: screening", [PRODUCT])
    env = service_env(uri, f"sqlite:///{root / 'audit.db'}", root / "keys.json", products=(PRODUCT,),
                      home=root / "bentoml")
    with running_server(env, root / "server.log") as server:
        yield server, key, uri


def examined(dbp: float = 72.0) -> dict[str, Any]:
    """An applicant as the examination extract describes one: no questionnaire answers at all."""
    return {"product": PRODUCT, "applicant": {
        "applicant_id": "A-1", "demographics": {"birth_date": "1980-03-01", "sex": "F", "region": "central",
                                                "family_history_score": 0.627},
        "questionnaire": {"application_date": "2024-06-30"},
        "consultations": [{"date": "2024-06-30", "channel": "outpatient", "dbp_mmhg": dbp, "bmi": 33.6,
                           "triceps_skinfold_mm": 35.0, "pregnancies": 6}],
        "lab_results": [{"date": "2024-06-30", "test": "ogtt_2h_glucose", "value": 148.0, "unit": "mg/dL"}]}}


def test_an_applicant_without_questionnaire_answers_is_scored_by_a_model_that_uses_none(screening_server):
    server, key, _ = screening_server
    answer = post(server, "/explain", examined(), key=key)
    assert answer.status_code == 200, answer.text
    explained = answer.json()
    assert explained["values"]["ogtt_2h_glucose_mmol_l_latest"] == pytest.approx(148.0 / 18.016, abs=0.01)
    assert explained["values"]["bmi_latest"] == 33.6
    assert not any(f.startswith("q_") for f in explained["values"])


def test_the_served_answer_equals_the_batch_scorer_bit_for_bit(screening_server, tmp_path):
    from chronorisk.settings import Settings
    from serving.batch import score_requests

    server, key, uri = screening_server
    answer = post(server, "/score", examined(), key=key)
    assert answer.status_code == 200, answer.text
    (tmp_path / "requests.jsonl").write_text(json.dumps(examined()) + "\n")
    counts = score_requests(Settings(MLFLOW_TRACKING_URI=uri, id_pepper=PEPPER), PRODUCT, "champion",
                            tmp_path / "requests.jsonl", tmp_path / "out.jsonl")
    assert counts == {"read": 1, "scored": 1, "rejected": 0}
    [line] = [json.loads(t) for t in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert line["result"]["probability"] == answer.json()["probability"]


def test_a_diastolic_of_24_is_refused_with_the_import_s_rule_and_message(screening_server):
    server, key, _ = screening_server
    answer = post(server, "/score", examined(dbp=24.0), key=key)
    assert answer.status_code == 422
    [error] = answer.json()["errors"]
    assert (error["field"], error["rule"]) == ("applicant.consultations[0].dbp_mmhg", "out_of_range")
    assert error["message"] == rule_message("consultations", "out_of_range:dbp_mmhg")
    assert "24" not in error["message"]


def test_questionnaire_measurements_without_its_answers_are_refused_not_left_unchecked(screening_server):
    server, key, _ = screening_server
    body = examined()
    body["applicant"]["questionnaire"]["weight_kg"] = 9999.0  # no answers: the form's row is never read
    answer = post(server, "/score", body, key=key)
    assert answer.status_code == 422
    [error] = answer.json()["errors"]
    assert (error["field"], error["rule"]) == ("applicant.questionnaire.weight_kg", "needs_answers")
    assert "9999" not in answer.text

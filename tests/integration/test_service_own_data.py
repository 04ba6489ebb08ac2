"""The real server on a model trained from an imported extract (issue 7): an applicant's custom
measurement reaches the model and its explanation, the answer equals the offline scoring function
and the batch scorer bit for bit, and a custom name the model does not know is refused with its
field path. The champion here is a GLM (issue 15: the small-data path may choose one), pinned by
the product's `small_data.candidates` so that the served bundle is a glm.json one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pytest
from own_data_fixtures import PEPPER as IMPORT_PEPPER
from service_fixtures import PEPPER, Server, post, running_server, service_env

from chronorisk.model.product import load_product
from chronorisk.model.registry import connect, fetch, model_name, resolve
from serving.examples import applicant_request
from serving.keys import KeyStore
from serving.schemas import Applicant
from serving.scoring import score_applicant, served_from
from training.extract_snapshot import build_extract_snapshot, imported_tables
from training.gate import promote
from training.train import train_product

PRODUCT = "byod_diabetes"


@pytest.fixture(scope="module")
def byod_store(own_data, tmp_path_factory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("byod-store")
    spec = load_product(PRODUCT)
    spec = spec.model_copy(update={"small_data": spec.small_data.model_copy(update={"candidates": ["glm"]})})
    build_extract_snapshot(own_data.imported, spec, root / "snapshot.parquet", pepper=IMPORT_PEPPER)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = connect(uri)
    version = train_product(spec, root / "snapshot.parquet", artifact_root=root / "mlartifacts",
                            pepper=PEPPER.encode(), seed=7).version
    assert version is not None
    promote(client, PRODUCT, spec.gate, root / "promotions.jsonl", to_version=version, reason="test champion",
            by="tests")
    return uri, version


@pytest.fixture(scope="module")
def byod_server(byod_store, tmp_path_factory) -> Iterator[tuple[Server, str]]:
    run = tmp_path_factory.mktemp("byod-run")
    key, _ = KeyStore(run / "keys.json").create("tests: own data", [PRODUCT])
    env = service_env(byod_store[0], f"sqlite:///{run / 'audit.db'}", run / "keys.json", products=(PRODUCT,),
                      home=run / "bentoml")
    with running_server(env, run / "server.log") as server:
        yield server, key


@pytest.fixture(scope="module")
def body(own_data) -> dict[str, Any]:
    """An imported applicant (the examination and labs of the application date) with a skinfold."""
    tables, _, _ = imported_tables(own_data.imported, IMPORT_PEPPER)
    custom = tables.pop("custom_measurements")
    member = str(custom["member_id"].iloc[0])
    start = tables["members"].set_index("member_id").loc[member, "enrollment_start"].date()
    applicant = applicant_request(tables, member, start)
    applicant["custom_measurements"] = {"skinfold_mm": 33.3}
    return {"product": PRODUCT, "applicant": json.loads(json.dumps(applicant))}


def test_a_custom_measurement_reaches_the_model_and_its_explanation(byod_server, body):
    server, key = byod_server
    answer = post(server, "/explain", body, key=key)
    assert answer.status_code == 200, answer.text
    explained = answer.json()
    assert explained["values"]["skinfold_mm"] == 33.3
    assert "skinfold_mm" in explained["contributions"]


def test_the_champion_is_a_glm_bundle_and_its_explanation_is_exact(byod_server, byod_store, body):
    from chronorisk.model.bundle import GLM_FILE
    from chronorisk.model.linear import LinearModel

    client = connect(byod_store[0])
    version = resolve(client, PRODUCT, "champion")
    assert GLM_FILE in {k.removeprefix("sha256.") for k in version.tags}
    model = fetch(client, version)
    assert isinstance(model.scorer, LinearModel)
    server, key = byod_server
    explained = post(server, "/explain", body, key=key).json()
    x = np.array([[explained["values"].get(f) if explained["values"].get(f) is not None else np.nan
                   for f in model.features]], dtype=float)
    raw = float(model.scorer.predict(x, raw_score=True)[0])
    assert explained["raw_score"] == pytest.approx(raw, abs=1e-12)
    assert explained["base_value"] + sum(explained["contributions"].values()) == pytest.approx(raw, abs=1e-9)


def test_the_served_answer_equals_the_offline_scoring_function(byod_server, byod_store, body):
    server, key = byod_server
    answer = post(server, "/score", body, key=key)
    assert answer.status_code == 200, answer.text
    client = connect(byod_store[0])
    version = resolve(client, PRODUCT, "champion")
    served = served_from(PRODUCT, model_name(PRODUCT), str(version.version), fetch(client, version))
    offline = score_applicant(served, Applicant.model_validate(body["applicant"]), "offline", date(2024, 12, 31),
                              PEPPER.encode())
    assert answer.json()["probability"] == offline.result.probability
    assert offline.features["skinfold_mm"] == 33.3


def test_the_served_answer_equals_the_batch_scorer_bit_for_bit(byod_server, byod_store, body, tmp_path):
    from chronorisk.settings import Settings
    from serving.batch import score_requests

    server, key = byod_server
    answer = post(server, "/score", body, key=key)
    assert answer.status_code == 200, answer.text
    (tmp_path / "requests.jsonl").write_text(json.dumps(body) + "\n")
    settings = Settings(MLFLOW_TRACKING_URI=byod_store[0], id_pepper=PEPPER)
    counts = score_requests(settings, PRODUCT, "champion", tmp_path / "requests.jsonl", tmp_path / "out.jsonl")
    assert counts == {"read": 1, "scored": 1, "rejected": 0}
    [line] = [json.loads(t) for t in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert line["result"]["probability"] == answer.json()["probability"]
    assert line["result"]["risk_class"] == answer.json()["risk_class"]


def test_a_custom_name_the_model_does_not_know_is_refused_with_its_field(byod_server, body):
    server, key = byod_server
    wrong = {**body, "applicant": {**body["applicant"], "custom_measurements": {"skinfold_cm": 3.3}}}
    answer = post(server, "/score", wrong, key=key)
    assert answer.status_code == 422
    [error] = answer.json()["errors"]
    assert (error["field"], error["rule"]) == ("applicant.custom_measurements.skinfold_cm", "unknown_feature")


def test_the_products_listing_documents_custom_measurements(byod_server):
    server, key = byod_server
    import httpx

    listing = httpx.get(f"{server.url}/products", headers={"x-api-key": key}, timeout=30).json()
    schema = listing["input_schema"]["properties"]["custom_measurements"]
    assert "custom features" in schema["description"]


def test_a_model_without_custom_features_refuses_custom_measurements(scoring_server, api_keys, model_store):
    members = model_store.tables["members"].sort_values("member_id")
    age = (date(2022, 6, 30) - members["birth_date"].dt.date).map(lambda d: d.days / 365.25)
    member = str(members.loc[(age > 25) & (age < 85), "member_id"].iloc[0])
    applicant = json.loads(json.dumps(applicant_request(model_store.tables, member, date(2022, 6, 30))))
    applicant["custom_measurements"] = {"skinfold_mm": 20.0}
    answer = post(scoring_server, "/score", {"product": "diabetes", "applicant": applicant}, key=api_keys.diabetes)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "applicant.custom_measurements.skinfold_mm"


def test_batch_scoring_of_an_imported_folder_reads_its_custom_measurements(byod_store, own_data, tmp_path):
    from chronorisk.settings import Settings
    from serving.batch import score_folder

    settings = Settings(MLFLOW_TRACKING_URI=byod_store[0], id_pepper=IMPORT_PEPPER.decode())
    counts = score_folder(settings, PRODUCT, "champion", own_data.imported, date(2021, 1, 1), tmp_path / "s.parquet")
    scored = pd.read_parquet(tmp_path / "s.parquet").set_index("member_id")
    assert counts["scored"] == len(own_data.snapshots)  # every applicant applied in 2020
    snap = own_data.snapshots.set_index("member_id")
    np.testing.assert_array_equal(scored["skinfold_mm"].to_numpy(), snap.loc[scored.index, "skinfold_mm"].to_numpy())
    assert scored["probability"].between(0, 1).all()

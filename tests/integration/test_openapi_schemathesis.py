"""The server's own OpenAPI document (/docs.json) against the real server, with schemathesis.

schemathesis reads the document the running `bentoml serve` publishes and generates requests
from it (valid and invalid bodies, parameters and headers) with a valid diabetes key; every answer
must be no 5xx, a status the document lists for the operation, the media type it names, and a body
and headers that validate against its schema. The number of examples per operation is bounded so
the whole run stays well under a minute here. The key is sent as the document's X-API-Key scheme
says, so the generated requests reach validation and the model rather than stopping at 401.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import httpx
import pandas as pd
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from serving.examples import applicant_request

EXAMPLES = 80  # per operation and generation mode (about 25 s of requests here)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]


def _run(operation, mode: GenerationMode, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate],  # a failure is reported as found, not shrunk
              suppress_health_check=list(HealthCheck))
    def check(case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS, timeout=60)

    check()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_every_answer_matches_the_served_document(scoring_server, api_keys, mode):
    # schemathesis' pytest loader (schemathesis.pytest.from_fixture) sets a pytest attribute that pytest 9
    # no longer has, so the operations are walked here, each with Hypothesis driving its strategy
    schema = schemathesis.openapi.from_url(f"{scoring_server.url}/docs.json", config=schemathesis.Config())
    # the valid key on every request: schemathesis would otherwise generate X-API-Key values of its own
    # (the security scheme's parameter), and most requests would stop at 401
    schema.config.update(base_url=scoring_server.url, headers={"X-API-Key": api_keys.diabetes})
    schema.config.generation.update(with_security_parameters=False)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/score", "/score_batch", "/explain", "/products",
                                              "/model_card/{product}"}
    failures, nothing_to_negate = {}, set()
    for operation in operations:
        try:
            _run(operation, mode, {"X-API-Key": api_keys.diabetes})
        except Unsatisfiable:  # an operation without parameters or body has no invalid input to send
            nothing_to_negate.add(operation.path)
        except Exception as err:  # every operation is tried; all failures are reported together
            failures[f"{operation.method.upper()} {operation.path}"] = f"{type(err).__name__}: {err}"[:2000]
    assert nothing_to_negate <= {"/healthz", "/livez", "/readyz", "/metrics", "/products"}  # no input but the key
    assert not failures, "\n\n".join(f"{op}: {why}" for op, why in failures.items())


def test_the_document_states_the_key_nullable_fields_errors_and_media_types(scoring_server):
    doc = httpx.get(f"{scoring_server.url}/docs.json", timeout=30).json()
    assert doc["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key", "description": "a key from `chronorisk keys create`"}
    score = doc["paths"]["/score"]["post"]
    assert score["security"] == [{"ApiKey": []}]
    assert {"200", "401", "403", "404", "413", "422", "503"} <= set(score["responses"])
    error = doc["components"]["schemas"]["ErrorAnswer"]
    assert set(error["required"]) == {"request_id", "status", "errors"}
    loading = doc["components"]["schemas"]["ScoreResult"]["properties"]["premium_loading_pct"]
    assert {"type": "null"} in loading["anyOf"]
    card = doc["paths"]["/model_card/{product}"]["get"]["responses"]["200"]["content"]
    assert "text/markdown" in card and "application/json" not in card


APPLICATION_DATE = date(2023, 6, 30)


def _real_requests(store, n: int) -> list[dict[str, Any]]:
    """n cohort members aged 25 to 85 at the application date, the first three with diabetes already on
    record (they are declined, premium_loading_pct null) and the rest as they come (accepted or referred)."""
    members = store.tables["members"].sort_values("member_id")
    age = (pd.Timestamp(APPLICATION_DATE) - members["birth_date"]).dt.days / 365.25
    adults = [str(m) for m in members.loc[(age >= 25) & (age <= 85), "member_id"]]
    cons = store.tables["consultations"]
    diabetic = set(cons.loc[(cons["date"] < pd.Timestamp(APPLICATION_DATE))
                            & cons["icd10_codes"].astype("str").str.contains("E11", regex=False), "member_id"]
                   .astype("str"))
    chosen = [m for m in adults if m in diabetic][:3] + [m for m in adults if m not in diabetic][: n - 3]
    return [json.loads(json.dumps(applicant_request(store.tables, m, APPLICATION_DATE))) for m in chosen]


def test_real_answers_accepted_referred_and_declined_match_the_document(scoring_server, api_keys, model_store):
    schema = schemathesis.openapi.from_url(f"{scoring_server.url}/docs.json", config=schemathesis.Config())
    schema.config.update(base_url=scoring_server.url)
    headers = {"X-API-Key": api_keys.diabetes}
    applicants = _real_requests(model_store, 12)
    decisions = []
    for applicant in applicants:
        for path in ("/score", "/explain"):
            case = schema[path]["POST"].Case(body={"product": "diabetes", "applicant": applicant},
                                             media_type="application/json")
            answer = case.call_and_validate(headers=headers, checks=CHECKS, timeout=60)
            assert answer.status_code == 200, answer.text
            if path == "/score":
                decisions.append((answer.json()["decision"], answer.json()["premium_loading_pct"]))
    batch = schema["/score_batch"]["POST"].Case(body={"product": "diabetes", "applicants": [*applicants[:9], 7]},
                                                media_type="application/json")
    answer = batch.call_and_validate(headers=headers, checks=CHECKS, timeout=60)
    assert [r["status"] for r in answer.json()["results"]] == [200] * 9 + [422]
    assert ("decline", None) in decisions  # the answer whose null loading the first document called a number
    for path, query in (("/products", {}), ("/model_card/{product}", {"format": "md"}),
                        ("/model_card/{product}", {"format": "html"})):
        case = schema[path]["GET"].Case(path_parameters={"product": "diabetes"} if "{" in path else None,
                                        query=query)
        assert case.call_and_validate(headers=headers, checks=CHECKS, timeout=60).status_code == 200

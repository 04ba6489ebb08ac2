"""Every endpoint's answers and refusals are audited on the real server, the GET ones and 405s included;
a refusal before authentication has no record of its own (it is counted in the aggregate)."""

from __future__ import annotations

import httpx
import pytest

from serving.audit import AuditLog


@pytest.fixture(scope="module")
def answers(scoring_server, api_keys, audit_url):
    def go(method: str, path: str, key: str | None) -> httpx.Response:
        return httpx.request(method, scoring_server.url + path, headers={"x-api-key": key} if key else {},
                             timeout=60, **({"json": {}} if method == "PUT" else {}))

    sent = {
        "products": go("GET", "/products", api_keys.diabetes),
        "card": go("GET", "/model_card/diabetes", api_keys.diabetes),
        "card_other_product": go("GET", "/model_card/diabetes", api_keys.hypertension),
        "card_unknown_product": go("GET", "/model_card/asthma", api_keys.diabetes),
        "products_no_key": go("GET", "/products", None),
        "put_score": go("PUT", "/score", api_keys.diabetes),
        "undeclared": go("GET", "/admin/export", api_keys.diabetes),
        "undeclared_no_key": go("GET", "/admin/export", None),
    }
    with AuditLog(audit_url) as log:
        records = {name: log.get(r.headers.get("x-request-id", "none")) for name, r in sent.items()}
    return sent, records, api_keys


@pytest.mark.parametrize("name, status", [("products", 200), ("card", 200), ("card_other_product", 403),
                                          ("card_unknown_product", 404), ("put_score", 405)])
def test_the_answer_and_its_record_agree_on_the_status_and_the_caller(answers, name, status):
    sent, records, keys = answers
    record = records[name]
    caller = keys.hypertension_id if name == "card_other_product" else keys.diabetes_id
    assert (sent[name].status_code, record is not None and record.status_code,
            record is not None and record.caller_key_id) == (status, status, caller)


def test_a_405_names_the_method_allowed(answers):
    assert answers[0]["put_score"].headers.get("allow") == "POST"


def test_a_read_refused_before_authentication_has_no_record_of_its_own(answers):
    sent, records, _ = answers
    assert (sent["products_no_key"].status_code, records["products_no_key"]) == (401, None)


def test_a_path_no_route_declares_is_refused_without_a_key_and_audited_with_one(answers):
    """serving/routes.py guards by default: an undeclared path is not open to a keyless caller."""
    sent, records, keys = answers
    record = records["undeclared"]
    assert (sent["undeclared_no_key"].status_code, records["undeclared_no_key"]) == (401, None)
    assert (sent["undeclared"].status_code, record is not None and record.status_code,
            record is not None and record.caller_key_id) == (404, 404, keys.diabetes_id)

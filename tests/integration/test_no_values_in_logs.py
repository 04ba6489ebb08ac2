"""Canaries: marked values in every field of real requests are found nowhere the service writes.

Each request puts a unique marker in every leaf of a valid body (strings where a string goes,
out-of-range numbers where a number goes, a bad lab unit, a marked applicant id on a request that
scores), sends it to the real server, then sweeps the server log, every answer and the audit
database's bytes for the markers. The markers are made here, so the sweep cannot pass by reading
what the service chose to write.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_service_bad_inputs import base_request

from serving.audit import AuditLog

_counter = itertools.count(1)


def _marker() -> str:
    return f"CNRY{next(_counter):06d}Q"


def _number_marker() -> float:
    return 86_000_000 + next(_counter) + 0.13579  # beyond every range; prints as e.g. 86000012.13579


def _mark_every_leaf(node: Any, numbers: bool, markers: list[str]) -> Any:
    """The same shape with each leaf replaced by a fresh marker (a number marker for numbers if asked)."""
    if isinstance(node, dict):
        return {k: _mark_every_leaf(v, numbers, markers) for k, v in node.items()}
    if isinstance(node, list):
        return [_mark_every_leaf(v, numbers, markers) for v in node]
    if numbers and isinstance(node, int | float) and not isinstance(node, bool):
        value = _number_marker()
        markers.append(repr(value))
        return value
    if numbers:
        return node
    text = _marker()
    markers.append(text)
    return text


@pytest.fixture(scope="module")
def canary_run(scoring_server, model_store, api_keys, audit_url) -> dict[str, Any]:
    base = base_request(model_store)
    applicant = base["applicant"]
    markers: list[str] = []
    bodies: list[tuple[str, Any, dict[str, str]]] = []
    json_headers = {"x-api-key": api_keys.diabetes, "content-type": "application/json"}

    scored_id = _marker()
    markers.append(scored_id)
    bodies.append(("/score", {"product": "diabetes", "applicant": {**applicant, "applicant_id": scored_id}},
                   json_headers))
    bodies.append(("/score", {"product": "diabetes", "applicant": _mark_every_leaf(applicant, False, markers)},
                   json_headers))
    bodies.append(("/score", {"product": "diabetes", "applicant": _mark_every_leaf(applicant, True, markers)},
                   json_headers))
    bodies.append(("/explain", {"product": "diabetes", "applicant": _mark_every_leaf(applicant, False, markers)},
                   json_headers))
    unit = _marker()
    markers.append(unit)
    labs = [*applicant["lab_results"], {"date": "2021-02-03", "test": "hba1c", "value": 5.4, "unit": unit}]
    bodies.append(("/score", {"product": "diabetes", "applicant": {**applicant, "lab_results": labs}}, json_headers))
    slot = _marker()
    markers.append(slot)
    bodies.append(("/score_batch", {"product": "diabetes", "applicants": [
        applicant, slot, _mark_every_leaf(applicant, False, markers), _mark_every_leaf(applicant, True, markers)]},
        json_headers))
    product = _marker()
    markers.append(product)
    bodies.append(("/score", {"product": product, "applicant": applicant}, json_headers))
    broken = _marker()
    markers.append(broken)
    bodies.append(("/score", f'{{"product": "diabetes", "applicant": {{"applicant_id": "{broken}"', json_headers))
    media = f"application/x-{_marker().lower()}"  # a header: BentoML's access log names it, answers must not
    bodies.append(("/score", {"product": "diabetes", "applicant": applicant},
                   {"x-api-key": api_keys.diabetes, "content-type": media}))

    answers: list[httpx.Response] = []
    for path, body, headers in bodies:
        content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        answers.append(httpx.post(scoring_server.url + path, content=content, headers=headers, timeout=60))
    with AuditLog(audit_url) as log:
        records = [log.get(a.headers.get("x-request-id", "none")) for a in answers]
    db = Path(audit_url.removeprefix("sqlite:///"))
    audit_bytes = b"".join(p.read_bytes() for p in (db, db.with_name(db.name + "-wal")) if p.exists())
    return {"markers": markers, "answers": answers, "records": records, "audit_bytes": audit_bytes,
            "log": scoring_server.log_text(), "media": media}


def test_every_canary_request_got_an_answer_and_an_audit_record(canary_run):
    statuses = [a.status_code for a in canary_run["answers"]]
    assert (statuses[0], all(r is not None for r in canary_run["records"])) == (200, True), statuses


def test_the_rejected_canaries_were_logged_redacted_with_their_request_id(canary_run):
    # The marked body failed BentoML's validation: BentoML logs that, and the log line must still name the
    # request and its field paths, without a value. (Without redaction this line holds pydantic's input_value.)
    request_id = canary_run["answers"][1].headers["x-request-id"]
    lines = [line for line in canary_run["log"].splitlines() if f"[request {request_id}]" in line]
    assert lines and "applicant.demographics.sex (literal_error)" in lines[0], lines


def test_no_canary_is_in_the_server_log(canary_run):
    assert [m for m in canary_run["markers"] if m in canary_run["log"]] == []


def test_no_canary_is_in_any_answer(canary_run):
    texts = [a.text + json.dumps(dict(a.headers)) for a in canary_run["answers"]]
    assert [m for m in [*canary_run["markers"], canary_run["media"]] if any(m in t for t in texts)] == []


def test_no_canary_is_in_the_audit_database(canary_run):
    stored = json.dumps([repr(r) for r in canary_run["records"]])
    found = [m for m in canary_run["markers"] if m in stored or m.encode() in canary_run["audit_bytes"]]
    assert (len(canary_run["audit_bytes"]) > 0, found) == (True, [])

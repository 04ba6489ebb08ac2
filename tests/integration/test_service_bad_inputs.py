"""Bad API inputs, table-driven, against the real server: each gets its documented status, an
answer naming the field path and rule, a request id, and an audit record; none gets a 5xx.

Every case is one edit of a valid request (or a raw body, or other headers). Expected statuses
and rules come from the service's documentation (gatekeeper order: 401 from the header, 413, 415,
422 for unreadable JSON, 422 for a body that is not an object with a string product and known
fields, 404, 403, 413 for batches; a 401 is audited in the interval's aggregate record, every
other answer by a record of its own; schema rules are pydantic's error types; record rules are the raw-data
contracts'), not from the service's own answers. Each request is sent once per
module; the tests below read the same answers.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from audit_test_keys import AUDIT_KEYS
from service_fixtures import MAX_BATCH, MAX_BODY_BYTES, PEPPER, Keys, ModelStore, Server

from serving.audit import AuditLog
from serving.examples import applicant_request

APPLICATION_DATE = date(2022, 6, 30)
N_CONSULTATIONS, N_LABS, N_WEAR = 2, 2, 30  # the base request's list lengths: an appended item's index
NEXT_YEAR = f"{date.today().year + 1}-06-15"
HASHED_RAW = {"body_is_an_array", "deeply_nested", "invalid_json", "empty_body"}  # raw bodies read before refusal
GATEKEEPER_FIELDS = {"body", "content-type", "header.x-api-key"}  # errors about the request, not a body field

Body = dict[str, Any]


@dataclass(frozen=True)
class Case:
    id: str
    status: int
    field: str | None  # the error's field path (None: a 200 without errors)
    rule: str | None
    edit: Callable[[Body], None] | None = None  # edits a copy of the valid request
    raw: Callable[[Body], bytes | Iterator[bytes]] | None = None  # or the body as sent, from the valid request
    path: str = "/score"
    key: str | None = "diabetes"  # which key is sent: a Keys attribute, or one of PRESENTED
    content_type: str = "application/json"
    audit_key: str | None = "diabetes"  # whose key id the audit record names (None: no key identified)
    headers: tuple[tuple[str, str], ...] = ()  # sent besides content-type and the key


PRESENTED: dict[str, Callable[[Keys], str]] = {
    "wrong_secret": lambda k: k.diabetes.rsplit("_", 1)[0] + "_" + "A" * 43,  # a real key id, a wrong secret
    "garbage": lambda k: "letmein",
    "unknown_id": lambda k: "crk_00000000_" + "B" * 43,  # well formed, no such key
}


# Headers the gatekeeper sets for the service behind it; a client sending them must change nothing.
FORGED = (("x-request-id", "client-chosen-id"), ("x-chronorisk-key-id", "deadbeef"),
          ("x-chronorisk-input-sha256", "0" * 64))


def applicant(edit: Callable[[Body], None]) -> Callable[[Body], None]:
    """An edit of the applicant part of the request."""
    return lambda body: edit(body["applicant"])


def append(table: str, record: dict[str, Any]) -> Callable[[Body], None]:
    return applicant(lambda a: a[table].append(record))


def delete(*path: str) -> Callable[[Body], None]:
    def run(body: Body) -> None:
        node = body
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]
    return run


def set_in(value: Any, *path: str) -> Callable[[Body], None]:
    def run(body: Body) -> None:
        node = body
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
    return run


def day_before_birth(a: Body) -> str:
    return (date.fromisoformat(a["demographics"]["birth_date"]) - timedelta(days=1)).isoformat()


def consultation(**values: Any) -> dict[str, Any]:
    return {"date": "2021-05-05", "channel": "outpatient", **values}


def lab(**values: Any) -> dict[str, Any]:
    return {"date": "2021-02-03", "test": "hba1c", "value": 5.4, "unit": "%", **values}


def wear(**values: Any) -> dict[str, Any]:
    return {"date": "2021-01-15", "steps": 6000, "wear_minutes": 1200.0, **values}


def small(a: Body) -> Body:
    return {**a, "wearable_daily": []}


def batch(*edits: Callable[[Body], None]) -> Callable[[Body], None]:
    """/score_batch of the valid applicant, then one edited copy per edit."""
    def run(body: Body) -> None:
        good = body.pop("applicant")
        items = [good]
        for edit in edits:
            item = copy.deepcopy(good)
            edit(item)
            items.append(item)
        body["applicants"] = items
    return run


def chunked(size: int) -> Callable[[Body], Iterator[bytes]]:
    """A body streamed without a content-length, `size` bytes in all."""
    def run(body: Body) -> Iterator[bytes]:
        head = b'{"product": "diabetes", "applicant": {"applicant_id": "'
        yield head
        left = size - len(head)
        while left > 0:
            yield b"x" * min(left, 16_384)
            left -= 16_384
    return run



CASES = [
    Case("the_unedited_request_is_scored", 200, None, None),
    # missing fields
    Case("missing_sex", 422, "applicant.demographics.sex", "missing", applicant(delete("demographics", "sex"))),
    Case("missing_application_date", 422, "applicant.questionnaire.application_date", "missing",
         applicant(delete("questionnaire", "application_date"))),
    Case("missing_product", 422, "product", "missing", delete("product")),
    Case("missing_applicant", 422, "applicant", "missing", delete("applicant")),
    # wrong types
    # the diabetes model uses the questionnaire: a form without answers is refused, naming them (issue 15)
    Case("questionnaire_without_answers", 422, "applicant.questionnaire.active_30min", "required_by_model",
         applicant(lambda a: [a["questionnaire"].pop(k) for k in ("active_30min", "daily_veg_fruit",
                                                                   "ever_bp_treatment", "ever_high_glucose",
                                                                   "family_history", "smoker")])),
    Case("one_answer_left_out", 422, "applicant.questionnaire.smoker", "null_required",
         applicant(delete("questionnaire", "smoker"))),
    Case("smoker_as_text", 422, "applicant.questionnaire.smoker", "bool_type",
         applicant(set_in("sometimes", "questionnaire", "smoker"))),
    Case("steps_as_text", 422, f"applicant.wearable_daily[{N_WEAR}].steps", "int_type",
         append("wearable_daily", wear(steps="many"))),
    Case("birth_date_not_iso", 422, "applicant.demographics.birth_date", "date_from_datetime_parsing",
         applicant(set_in("31/12/1970", "demographics", "birth_date"))),
    Case("lab_value_as_text", 422, f"applicant.lab_results[{N_LABS}].value", "float_type",
         append("lab_results", lab(value="high"))),
    Case("lab_value_as_numeric_text", 422, f"applicant.lab_results[{N_LABS}].value", "float_type",
         append("lab_results", lab(value="7.0"))),
    Case("smoker_as_yes", 422, "applicant.questionnaire.smoker", "bool_type",
         applicant(set_in("yes", "questionnaire", "smoker"))),
    Case("batch_with_a_slot_that_is_not_an_object", 200, "applicants[1]", "model_type", path="/score_batch",
         edit=lambda b: b.update(applicants=[b.pop("applicant"), "not an applicant"])),
    Case("applicant_as_list", 422, "applicant", "model_type", set_in([1, 2], "applicant")),
    Case("product_as_number", 422, "product", "string_type", set_in(5, "product")),
    Case("body_is_an_array", 422, "body", "model_type", raw=lambda b: b"[1, 2]"),
    # wrong lab units
    Case("hba1c_in_mg_per_dl", 422, f"applicant.lab_results[{N_LABS}].unit", "value_error",
         append("lab_results", lab(unit="mg/dL"))),
    Case("egfr_in_mmol_per_l", 422, f"applicant.lab_results[{N_LABS}].unit", "value_error",
         append("lab_results", lab(test="egfr", value=80, unit="mmol/L"))),
    # impossible values: the contract's rule, as import and batch scoring apply it (issue 15)
    Case("sbp_400", 422, f"applicant.consultations[{N_CONSULTATIONS}].sbp_mmhg", "out_of_range",
         append("consultations", consultation(sbp_mmhg=400, dbp_mmhg=80))),
    Case("steps_minus_5", 422, f"applicant.wearable_daily[{N_WEAR}].steps", "out_of_range",
         append("wearable_daily", wear(steps=-5))),
    Case("hba1c_40_percent", 422, f"applicant.lab_results[{N_LABS}].value", "out_of_range",
         append("lab_results", lab(value=40))),
    Case("dbp_above_sbp", 422, f"applicant.consultations[{N_CONSULTATIONS}].dbp_mmhg", "out_of_range",
         append("consultations", consultation(sbp_mmhg=100, dbp_mmhg=120))),
    Case("weight_2000_kg", 422, "applicant.questionnaire.weight_kg", "out_of_range",
         applicant(set_in(2000, "questionnaire", "weight_kg"))),
    Case("applicant_aged_ten", 422, "applicant.demographics.birth_date", "out_of_range",
         applicant(set_in((APPLICATION_DATE - timedelta(days=3650)).isoformat(), "demographics", "birth_date"))),
    # future dates
    Case("consultation_next_year", 422, f"applicant.consultations[{N_CONSULTATIONS}].date", "future_date",
         append("consultations", consultation(date=NEXT_YEAR))),
    Case("wearable_day_next_year", 422, f"applicant.wearable_daily[{N_WEAR}].date", "future_date",
         append("wearable_daily", wear(date=NEXT_YEAR))),
    Case("application_next_year", 422, "applicant.questionnaire.application_date", "future_date",
         applicant(set_in(NEXT_YEAR, "questionnaire", "application_date"))),
    # dates before birth
    Case("lab_before_birth", 422, f"applicant.lab_results[{N_LABS}].date", "before_birth",
         applicant(lambda a: a["lab_results"].append(lab(date=day_before_birth(a))))),
    Case("consultation_before_birth", 422, f"applicant.consultations[{N_CONSULTATIONS}].date", "before_birth",
         applicant(lambda a: a["consultations"].append(consultation(date=day_before_birth(a))))),
    # duplicates: the later copy is the one refused
    Case("duplicate_wearable_day", 422, f"applicant.wearable_daily[{N_WEAR}]", "duplicate",
         applicant(lambda a: a["wearable_daily"].append(dict(a["wearable_daily"][0])))),
    Case("duplicate_lab_same_day_and_test", 422, f"applicant.lab_results[{N_LABS}]", "duplicate",
         applicant(lambda a: a["lab_results"].append({**a["lab_results"][0],
                                                       "value": a["lab_results"][0]["value"] * 1.01}))),
    # unknown codes
    Case("icd10_malformed", 422, f"applicant.consultations[{N_CONSULTATIONS}].icd10_codes[0]",
         "string_pattern_mismatch", append("consultations", consultation(icd10_codes=["E11-9"]))),
    Case("atc_malformed", 422, f"applicant.consultations[{N_CONSULTATIONS}].atc_codes[0]",
         "string_pattern_mismatch", append("consultations", consultation(atc_codes=["a10ba02"]))),
    # JSON's NaN and Infinity are not missing values (null is): they name their own rule, not null_required
    Case("lab_value_nan", 422, f"applicant.lab_results[{N_LABS}].value", "finite_number",
         append("lab_results", lab(value=float("nan")))),
    Case("waist_nan", 422, "applicant.questionnaire.waist_cm", "finite_number",
         applicant(set_in(float("nan"), "questionnaire", "waist_cm"))),
    Case("resting_hr_infinite", 422, f"applicant.wearable_daily[{N_WEAR}].resting_hr", "finite_number",
         append("wearable_daily", wear(resting_hr=float("inf")))),
    # well formed, but on no list: U99 is no WHO ICD-10 category, X no ATC anatomical main group
    Case("icd10_not_a_who_code", 422, f"applicant.consultations[{N_CONSULTATIONS}].icd10_codes", "unknown_code",
         append("consultations", consultation(icd10_codes=["I10", "U99.9"]))),
    Case("atc_not_an_anatomical_group", 422, f"applicant.consultations[{N_CONSULTATIONS}].atc_codes",
         "unknown_code", append("consultations", consultation(atc_codes=["X10BA02"]))),
    Case("unknown_region", 422, "applicant.demographics.region", "literal_error",
         applicant(set_in("atlantis", "demographics", "region"))),
    Case("unknown_channel", 422, f"applicant.consultations[{N_CONSULTATIONS}].channel", "literal_error",
         append("consultations", consultation(channel="telepathy"))),
    Case("unknown_sex", 422, "applicant.demographics.sex", "literal_error",
         applicant(set_in("X", "demographics", "sex"))),
    Case("unknown_lab_test", 422, f"applicant.lab_results[{N_LABS}].test", "literal_error",
         append("lab_results", lab(test="vitamin_d", unit="ng/mL"))),
    # unknown fields
    Case("extra_field_in_demographics", 422, "applicant.demographics.full_name", "extra_forbidden",
         applicant(set_in("Zhang Wei", "demographics", "full_name"))),
    Case("extra_top_level_field", 422, "as_of", "extra_forbidden", set_in("2021-01-01", "as_of")),
    # documented as scored without wearable data
    Case("no_wearable_data", 200, None, None, applicant(set_in([], "wearable_daily"))),
    # the service's internal headers, sent by the client: ignored (twice, as a replay of the same id)
    Case("forged_internal_headers", 200, None, None, headers=FORGED),
    Case("forged_internal_headers_again", 200, None, None, headers=FORGED),
    # products
    Case("unknown_product", 404, "product", "unknown_product", set_in("cancer", "product")),
    Case("product_not_served_here", 404, "product", "unknown_product", set_in("hypertension", "product"),
         key="hypertension", audit_key="hypertension"),
    # keys
    Case("no_key", 401, "header.x-api-key", "unauthorized", key=None, audit_key=None),
    Case("wrong_secret", 401, "header.x-api-key", "unauthorized", key="wrong_secret", audit_key="diabetes"),
    Case("garbage_key", 401, "header.x-api-key", "unauthorized", key="garbage", audit_key=None),
    Case("unknown_key_id", 401, "header.x-api-key", "unauthorized", key="unknown_id", audit_key=None),
    Case("revoked_key", 401, "header.x-api-key", "unauthorized", key="revoked", audit_key="revoked"),
    Case("key_for_another_product", 403, "header.x-api-key", "forbidden", key="hypertension",
         audit_key="hypertension"),
    # media types: refused before the body is read, after the key (which the record names)
    Case("pickle_content_type", 415, "content-type", "unsupported_media_type", raw=lambda b: b"\x80\x05K\x01.",
         content_type="application/vnd.bentoml+pickle"),
    Case("form_content_type", 415, "content-type", "unsupported_media_type", raw=lambda b: b"product=diabetes",
         content_type="application/x-www-form-urlencoded"),
    # sizes and shapes
    Case("oversized_body", 413, "body", "too_large", raw=lambda b: json.dumps(
        {**b, "applicant": {**b["applicant"], "applicant_id": "x" * MAX_BODY_BYTES}}).encode()),
    Case("oversized_body_without_length", 413, "body", "too_large", raw=chunked(MAX_BODY_BYTES + 50_000)),
    Case("oversized_batch", 413, "applicants", "too_many", path="/score_batch",
         edit=lambda b: b.update(applicants=[small(b.pop("applicant"))] * (MAX_BATCH + 1))),
    Case("deeply_nested", 422, "body", "too_deep",
         raw=lambda b: b'{"product": "diabetes", "applicant": ' + b"[" * 40 + b"]" * 40 + b"}"),
    Case("invalid_json", 422, "body", "invalid_json", raw=lambda b: b'{"product": "diabetes", "applicant": {'),
    Case("empty_body", 422, "body", "invalid_json", raw=lambda b: b""),
    # batches: the batch answers 200, each bad applicant gets its own 422 naming its path in the batch
    Case("batch_with_one_invalid_applicant", 200, "applicants[1].demographics.sex", "missing", path="/score_batch",
         edit=batch(delete("demographics", "sex"))),
    Case("batch_with_one_rejected_applicant", 200, f"applicants[1].consultations[{N_CONSULTATIONS}].date",
         "future_date", path="/score_batch", edit=batch(lambda a: a["consultations"].append(
             consultation(date=NEXT_YEAR)))),
    Case("explain_with_missing_sex", 422, "applicant.demographics.sex", "missing", path="/explain",
         edit=applicant(delete("demographics", "sex"))),
]


@dataclass
class Exchange:
    sent: Any  # the JSON body as sent, or None for a raw body
    response: httpx.Response
    presented_key: str | None
    content: bytes | None  # the body's bytes (None when streamed)
    answer: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> list[dict[str, Any]]:
        """The answer's errors; for a batch, every slot's."""
        if "results" in self.answer:
            return [e for r in self.answer["results"] for e in (r.get("errors") or [])]
        return list(self.answer.get("errors") or [])


def base_request(store: ModelStore) -> Body:
    """A valid request with exactly N_CONSULTATIONS consultations, N_LABS labs and N_WEAR wearable days."""
    members = store.tables["members"].sort_values("member_id")
    for member_id, birth in zip(members["member_id"], members["birth_date"], strict=True):
        age = (APPLICATION_DATE - birth.date()).days / 365.25
        if not 30 <= age <= 70:
            continue
        body = applicant_request(store.tables, member_id, APPLICATION_DATE)
        if (len(body["consultations"]) >= N_CONSULTATIONS and len(body["lab_results"]) >= N_LABS
                and len(body["wearable_daily"]) >= N_WEAR):
            body["consultations"] = body["consultations"][:N_CONSULTATIONS]
            body["lab_results"] = body["lab_results"][:N_LABS]
            body["wearable_daily"] = body["wearable_daily"][-N_WEAR:]
            taken = {(r["date"], r["test"]) for r in body["lab_results"]} | {(r["date"], "day") for r in
                                                                                body["wearable_daily"]}
            if not taken & {("2021-02-03", "hba1c"), ("2021-02-03", "egfr"), ("2021-01-15", "day")}:
                return {"product": "diabetes", "applicant": json.loads(json.dumps(body))}
    raise AssertionError("no member of the cohort has enough records for the base request")


def presented(case: Case, keys: Keys) -> str | None:
    if case.key is None:
        return None
    return PRESENTED[case.key](keys) if case.key in PRESENTED else str(getattr(keys, case.key))


def send(server: Server, case: Case, base: Body, keys: Keys) -> Exchange:
    key = presented(case, keys)
    headers = {"content-type": case.content_type, **({"x-api-key": key} if key is not None else {}),
               **dict(case.headers)}
    sent: Any = None
    if case.raw is not None:
        content: bytes | Iterator[bytes] = case.raw(copy.deepcopy(base))
    else:
        sent = copy.deepcopy(base)
        if case.edit is not None:
            case.edit(sent)
        content = json.dumps(sent).encode()
    response = httpx.post(server.url + case.path, content=content, headers=headers, timeout=60)
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    return Exchange(sent=sent, response=response, presented_key=key, answer=answer,
                    content=content if isinstance(content, bytes) else None)


@pytest.fixture(scope="module")
def exchange(scoring_server, model_store, api_keys) -> Callable[[Case], Exchange]:
    """Each case's request, sent once (on first use) and shared by the tests below."""
    base = base_request(model_store)
    done: dict[str, Exchange] = {}

    def get(case: Case) -> Exchange:
        if case.id not in done:
            done[case.id] = send(scoring_server, case, base, api_keys)
        return done[case.id]
    return get


@pytest.fixture(scope="module")
def audit_log(audit_url) -> Iterator[AuditLog]:
    log = AuditLog(audit_url, AUDIT_KEYS)
    yield log
    log.close()


def cases(where: Callable[[Case], bool] = lambda c: True) -> list[Any]:
    return [pytest.param(c, id=c.id) for c in CASES if where(c)]


@pytest.mark.parametrize("case", cases())
def test_a_bad_input_gets_its_documented_status(case, exchange):
    got = exchange(case)
    assert got.response.status_code == case.status, got.response.text[:500]


@pytest.mark.parametrize("case", cases(lambda c: c.field is not None))
def test_a_bad_input_answer_names_the_field_path_and_rule(case, exchange):
    got = exchange(case)
    assert (case.field, case.rule) in [(e.get("field"), e.get("rule")) for e in got.errors], got.errors


@pytest.mark.parametrize("case", cases(lambda c: c.field is None))
def test_a_good_request_is_scored_without_errors(case, exchange):
    got = exchange(case)
    assert (got.errors, 0.0 <= got.answer.get("probability", -1.0) <= 1.0) == ([], True), got.answer


def _resolves(body: Any, path: str) -> bool:
    node = body
    for token in re.findall(r"\[\d+\]|[^.\[\]]+", path):
        if token.startswith("["):
            index = int(token[1:-1])
            if not isinstance(node, list) or index >= len(node):
                return False
            node = node[index]
        elif isinstance(node, dict) and token in node:
            node = node[token]
        else:
            return False
    return True


def _names_a_field_of(body: Any, error: dict[str, Any]) -> bool:
    path = str(error.get("field"))
    if path in GATEKEEPER_FIELDS:
        return True
    if error.get("rule") in ("missing", "null_required", "required_by_model"):  # absent: its parent is there
        path = re.sub(r"(\.[^.\[\]]+|\[\d+\]|^[^.\[\]]+)$", "", path)
    return _resolves(body, path)


@pytest.mark.parametrize("case", cases(lambda c: c.raw is None and c.field is not None))
def test_every_error_names_a_field_the_request_has(case, exchange):
    got = exchange(case)
    assert [e for e in got.errors if not _names_a_field_of(got.sent, e)] == []


@pytest.mark.parametrize("case", cases())
def test_every_answer_carries_its_request_id(case, exchange):
    got = exchange(case)
    header = got.response.headers.get("x-request-id")
    assert (bool(header), header) == (True, got.answer.get("request_id")), dict(got.response.headers)


@pytest.mark.parametrize("case", cases(lambda c: c.status != 401))
def test_every_answer_after_authentication_is_audited_with_its_status(case, exchange, audit_log):
    got = exchange(case)
    record = audit_log.get(got.response.headers.get("x-request-id", "none"))
    assert (record.status_code if record else None) == got.response.status_code


@pytest.mark.parametrize("case", cases(lambda c: c.status != 401))
def test_the_audit_names_the_caller_by_key_id(case, exchange, audit_log, api_keys):
    got = exchange(case)
    record = audit_log.get(got.response.headers.get("x-request-id", "none"))
    expected = getattr(api_keys, f"{case.audit_key}_id") if case.audit_key else None
    assert record is not None and record.caller_key_id == expected


@pytest.mark.parametrize("case", cases(lambda c: (c.raw is None or c.id in HASHED_RAW) and c.status != 401))
def test_the_audit_holds_the_hash_of_the_bytes_received(case, exchange, audit_log):
    got = exchange(case)
    record = audit_log.get(got.response.headers.get("x-request-id", "none"))
    assert got.content is not None and record is not None
    assert record.input_sha256 == hashlib.sha256(got.content).hexdigest()


@pytest.mark.parametrize("case", cases(lambda c: c.key is not None and c.status != 401))
def test_the_audit_never_holds_the_key_itself(case, exchange, audit_log):
    got = exchange(case)
    record = audit_log.get(got.response.headers.get("x-request-id", "none"))
    assert record is not None and str(got.presented_key) not in repr(record)


def test_a_refusal_before_authentication_has_no_record_of_its_own_but_is_counted_in_an_aggregate(
        exchange, audit_log):
    refused = [exchange(c) for c in CASES if c.status == 401]
    started = min(r.response.headers["date"] for r in refused)  # only to show they were sent
    own = [audit_log.get(r.response.headers["x-request-id"]) for r in refused]
    time.sleep(2.5)  # the test servers write the aggregate every second
    counted = sum(c["count"] for rec in audit_log.records() if rec.status_code == 0 and rec.error
                  for c in rec.error["counts"] if c["status"] == 401 and c["rule"] == "unauthorized")
    assert (bool(started), own, counted >= len(refused)) == (True, [None] * len(refused), True)


def test_a_batch_record_carries_each_applicants_pseudonym_score_and_feature_vector(exchange, audit_log):
    got = exchange(next(c for c in CASES if c.id == "batch_with_one_rejected_applicant"))
    record = audit_log.get(got.response.headers["x-request-id"])
    assert record is not None and record.error is not None
    slots = record.error["batch"]
    applicant_id = got.sent["applicants"][0]["applicant_id"]
    by_hand = hmac.new(PEPPER.encode(), applicant_id.encode(), hashlib.sha256).hexdigest()
    assert [(s["index"], s["status"], s["member_ref"]) for s in slots] == [(0, 200, by_hand), (1, 422, by_hand)]
    assert (slots[0]["score"], isinstance(slots[0]["features"], dict), slots[1]["features"]) == (
        got.answer["results"][0]["result"]["probability"], True, None)


def test_an_unknown_product_is_refused_with_the_known_products_listed(exchange):
    got = exchange(next(c for c in CASES if c.id == "unknown_product"))
    assert [e["message"] for e in got.errors if e["rule"] == "unknown_product"] == [
        "unknown product; known products: diabetes"]


def test_a_batch_with_one_bad_applicant_scores_the_others(exchange):
    got = exchange(next(c for c in CASES if c.id == "batch_with_one_rejected_applicant"))
    assert [(r["index"], r["status"], r["result"] is not None) for r in got.answer["results"]] == [
        (0, 200, True), (1, 422, False)]


def test_audit_chain_verifies_after_the_suite(exchange, audit_log):
    for case in CASES:  # every case sent, whatever ran before
        exchange(case)
    result = audit_log.verify()
    own_records = len([c for c in CASES if c.status != 401])
    assert (result.ok, result.reason, result.checked >= own_records) == (True, None, True)


def test_no_request_got_a_server_error(exchange, scoring_server):
    for case in CASES:
        exchange(case)
    statuses = re.findall(r"\(status=(\d{3})", scoring_server.log_text())  # BentoML's access log, one per request
    assert (len(statuses) >= len(CASES), [s for s in statuses if s.startswith("5")]) == (True, [])

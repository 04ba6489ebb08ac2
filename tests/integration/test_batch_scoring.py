"""/score_batch's vectorised path gives each applicant exactly what /score gives it alone.

Varied applicants from the session's cohort and champion: clean ones, the load bench's standard
applicant, rows the contracts reject at different positions of different tables (their field paths
must name the applicant's own row), refused demographics, no questionnaire answers, an unknown
custom measurement, the same applicant id twice with different records, and (over HTTP) items
that are not applicants at all. Compared bit for bit: probability, raw score, every contribution,
every feature, reasons, decision, and the errors with their field paths.
"""

from __future__ import annotations

import copy
import json
from datetime import date
from typing import Any

import numpy as np
import pytest
from service_fixtures import ModelStore, post

from chronorisk.model.registry import CHAMPION, connect, fetch, model_name, resolve
from serving.batch_scoring import score_applicants
from serving.examples import applicant_request, standard_applicant
from serving.schemas import Applicant
from serving.scoring import ApplicantRejected, Scored, ServedModel, score_applicant, served_from

APPLICATION_DATE = date(2022, 6, 30)
TODAY = date(2024, 12, 31)
PEPPER = b"service-test-pepper-0f3c9a"


def _members(store: ModelStore, n: int) -> list[str]:
    members = store.tables["members"].sort_values("member_id")
    chosen = [str(m) for m, b in zip(members["member_id"], members["birth_date"], strict=True)
              if 25 <= (APPLICATION_DATE - b.date()).days / 365.25 <= 85]
    return chosen[:n]


def _edited(body: dict[str, Any], edit: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    edit(out)
    return out


def _lab(test: str, value: float, unit: str, day: str = "2022-01-10") -> dict[str, Any]:
    return {"date": day, "test": test, "value": value, "unit": unit}


def varied_applicants(store: ModelStore) -> list[dict[str, Any]]:
    """Applicant bodies, the accepted and the refused mixed, two of them sharing an applicant id."""
    clean = [json.loads(json.dumps(applicant_request(store.tables, m, APPLICATION_DATE))) for m in _members(store, 12)]
    std = standard_applicant()
    base = clean[0]

    def bad_lab(a: dict[str, Any]) -> None:  # an implausible HbA1c, as the last of three lab rows
        a["lab_results"] = [_lab("hdl", 1.2, "mmol/L"), _lab("ldl", 3.0, "mmol/L"), _lab("hba1c", 40.0, "%")]

    def bad_consultation(a: dict[str, Any]) -> None:  # diastolic over systolic, at position 3 of 4
        a["consultations"] = [*std["consultations"][:3], {**std["consultations"][3], "sbp_mmhg": 80.0,
                                                          "dbp_mmhg": 95.0}]

    def future_and_duplicate(a: dict[str, Any]) -> None:  # two tables' rows at once
        a["wearable_daily"] = [*a["wearable_daily"][:5], {**a["wearable_daily"][4]},
                               {"date": "2099-01-01", "steps": 100}]
        a["consultations"].append({"date": "2099-02-01", "channel": "online"})

    def too_young(a: dict[str, Any]) -> None:  # the members row refused: the other rows follow it
        a["demographics"]["birth_date"] = "2010-01-01"

    def no_answers(a: dict[str, Any]) -> None:
        for name in ("active_30min", "daily_veg_fruit", "ever_bp_treatment", "ever_high_glucose", "family_history",
                     "smoker"):
            a["questionnaire"][name] = None

    def unknown_custom(a: dict[str, Any]) -> None:
        a["custom_measurements"] = {"skinfold_mm": 30.0}

    def prevalent(a: dict[str, Any]) -> None:  # scored, then knocked out on its own records
        a["consultations"].append({"date": "2021-05-01", "channel": "outpatient", "icd10_codes": ["E11.9"]})

    def no_records(a: dict[str, Any]) -> None:
        a["consultations"], a["lab_results"], a["wearable_daily"] = [], [], []

    return [clean[1], _edited(std, bad_lab), clean[2], std, _edited(clean[3], bad_consultation),
            _edited(std, future_and_duplicate), clean[4], _edited(clean[5], too_young), _edited(clean[6], no_answers),
            _edited(clean[7], unknown_custom), base, _edited(base, bad_lab),  # the same id, refused the second time
            *clean[8:], *({**std, "applicant_id": f"STANDARD-{k}"} for k in range(3)), _edited(clean[8], prevalent),
            _edited(clean[9], no_records)]


@pytest.fixture(scope="module")
def served(model_store: ModelStore) -> ServedModel:
    client = connect(model_store.tracking_uri)
    version = resolve(client, "diabetes", CHAMPION)
    return served_from("diabetes", model_name("diabetes"), str(version.version), fetch(client, version))


def _alone(served: ServedModel, applicant: Applicant) -> Scored | ApplicantRejected:
    try:
        return score_applicant(served, applicant, "r-1", TODAY, PEPPER)
    except ApplicantRejected as err:
        return err


def _bits(x: Any) -> list[str]:
    return [float(v).hex() for v in np.asarray(x, dtype=float).ravel()]


def test_the_vectorised_batch_answers_each_applicant_as_scoring_it_alone(served, model_store):
    applicants = [Applicant.model_validate(a) for a in varied_applicants(model_store)]
    together = score_applicants(served, applicants, "r-1", TODAY, PEPPER)
    alone = [_alone(served, a) for a in applicants]
    assert len(together) == len(alone) == len(applicants)
    for k, (batch, single) in enumerate(zip(together, alone, strict=True)):
        assert type(batch) is type(single), k
        if isinstance(single, ApplicantRejected):
            assert isinstance(batch, ApplicantRejected)
            assert [e.model_dump() for e in batch.errors] == [e.model_dump() for e in single.errors], k
            continue
        assert isinstance(batch, Scored)
        assert batch.result.model_dump() == single.result.model_dump(), k
        assert float(batch.raw_score).hex() == float(single.raw_score).hex(), k
        assert _bits(batch.contributions) == _bits(single.contributions), k
        assert _bits(list(batch.features.values())) == _bits(list(single.features.values())), k
    refused = {k: [(e.field, e.rule) for e in s.errors]
               for k, s in enumerate(alone) if isinstance(s, ApplicantRejected)}
    assert ("applicant.lab_results[2].value", "out_of_range") in refused[1]
    assert ("applicant.consultations[3].dbp_mmhg", "out_of_range") in refused[4]
    assert {("applicant.wearable_daily[5]", "duplicate"), ("applicant.wearable_daily[6].date", "future_date"),
            ("applicant.consultations[10].date", "future_date")} <= set(refused[5])
    assert refused[7] == [("applicant.demographics.birth_date", "out_of_range")]
    assert {rule for _, rule in refused[8]} == {"required_by_model", "needs_answers"}
    assert refused[9] == [("applicant.custom_measurements.skinfold_mm", "unknown_feature")]
    assert 11 in refused and 10 not in refused  # one applicant id, two requests: each judged on its own records
    scored = [s for s in alone if isinstance(s, Scored)]
    assert len(scored) >= 12 and len({s.result.decision for s in scored}) >= 3
    assert scored[-2].result.knockout.startswith("prevalent") and scored[-1].result.knockout.startswith("too little")


def test_lightgbm_scores_a_matrix_row_as_it_scores_the_row_alone(served, model_store):
    """The batch's premise, on real rows: one predict of the matrix equals one predict per row, bit for bit."""
    from serving.scoring import ONE_ROW

    applicants = [Applicant.model_validate(a) for a in varied_applicants(model_store)]
    rows = [list(s.features.values()) for s in (_alone(served, a) for a in applicants) if isinstance(s, Scored)]
    x = np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=float)
    booster = served.model.scorer
    for kwargs in (ONE_ROW, {}):
        raw, contrib = booster.predict(x, raw_score=True, **kwargs), booster.predict(x, pred_contrib=True, **kwargs)
        for i in range(len(x)):
            one = x[i:i + 1]
            assert _bits(raw[i]) == _bits(booster.predict(one, raw_score=True, **ONE_ROW))
            assert _bits(contrib[i]) == _bits(booster.predict(one, pred_contrib=True, **ONE_ROW))


def test_score_batch_over_http_equals_score_for_each_slot(scoring_server, api_keys, model_store):
    varied = varied_applicants(model_store)
    malformed = {**varied[0], "demographics": {"sex": "F"}}
    # at most the test server's 10 a batch: clean, refused rows, no answers, one id twice, not applicants
    sent: list[Any] = [varied[1], varied[3], varied[4], 7, varied[7], varied[8], varied[10], malformed, varied[11],
                       varied[0]]
    batch = post(scoring_server, "/score_batch", {"product": "diabetes", "applicants": sent}, key=api_keys.diabetes)
    assert batch.status_code == 200, batch.text
    slots = batch.json()["results"]
    assert [s["index"] for s in slots] == list(range(len(sent)))
    assert slots[3]["status"] == 422 and slots[3]["errors"][0]["field"] == "applicants[3]"
    assert slots[7]["status"] == 422 and "applicants[7].demographics.region" in {e["field"] for e in slots[7]["errors"]}
    for i, body in enumerate(sent):
        if not isinstance(body, dict) or i == 7:
            continue
        alone = post(scoring_server, "/score", {"product": "diabetes", "applicant": body}, key=api_keys.diabetes)
        slot = slots[i]
        assert slot["status"] == alone.status_code, (i, alone.text)
        if alone.status_code == 200:
            mine, theirs = dict(slot["result"]), dict(alone.json())
            assert mine.pop("request_id") and theirs.pop("request_id")
            assert mine == theirs, i
        else:
            assert slot["errors"] == [{**e, "field": f"applicants[{i}]" + e["field"].removeprefix("applicant")}
                                      for e in alone.json()["errors"]], i
    assert {s["status"] for s in slots} == {200, 422}

"""Who the monitor compares with the reference follows the product's outcome: a scored extract is
monitored (the issue's 365-day enrolment rule left 0 eligible rows), and a current outcome
excludes nobody for having the disease."""

from __future__ import annotations

from datetime import date

from examination_fixtures import MAPPING, PEPPER, examination_extract

from chronorisk.data.extract import import_extract
from chronorisk.data.mapping import load_mapping, with_source
from chronorisk.model.product import load_product
from monitoring.monitor import ineligible_why
from serving.batch import EligibleAtDate
from training.extract_snapshot import imported_tables

SCORED_ON = date(2024, 7, 1)  # the day after the examinations of 2024-06-30


def _tables(tmp_path):  # type: ignore[no-untyped-def]
    frame = examination_extract()
    frame.loc[5, "Glucose"] = 250  # 13.9 mmol/L two hours into the OGTT: diabetes on record (>= 11.1)
    csv = tmp_path / "exam.csv"
    frame.to_csv(csv, index=False)
    import_extract(with_source(load_mapping(MAPPING), csv), MAPPING, tmp_path / "raw", pepper=PEPPER)
    tables, _, _ = imported_tables(tmp_path / "raw", PEPPER)
    return tables


def test_a_scored_extract_is_eligible_under_its_own_products(tmp_path):
    tables = _tables(tmp_path)
    screening = load_product("diabetes_screening")
    incident = load_product("byod_diabetes")
    event = load_product("diabetes")
    diabetic = load_product("diabetes").event
    for spec, expected in ((screening, 300), (incident, 300), (event, 0)):  # event: 365 days' enrolment
        eligible, _ = EligibleAtDate(spec, SCORED_ON)(tables)
        assert int(eligible["eligible"].sum()) == expected, spec.name
    # with the diabetes event definition on both: the incident product leaves out the one diabetic on
    # record, the screening product (whose outcome is that very diabetes) keeps her
    for spec, expected in ((screening.model_copy(update={"event": diabetic}), 300),
                           (incident.model_copy(update={"event": diabetic}), 299)):
        eligible, _ = EligibleAtDate(spec, SCORED_ON)(tables)
        assert int(eligible["eligible"].sum()) == expected, spec.name
        assert bool(eligible.set_index("member_id").loc["exam-5", "eligible"]) is (expected == 300)


def test_the_monitor_says_who_it_left_out_in_the_product_s_terms():
    assert ineligible_why(load_product("diabetes")) == \
        "type 2 diabetes already on record or under 365 days enrolled or not enrolled on the date"
    assert ineligible_why(load_product("diabetes_screening")) == "not enrolled on the date"

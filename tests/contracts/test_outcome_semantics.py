"""A product says whether its outcome is incident within the horizon or current (screening); an
imported outcome is checked against it, and the risk classes against the outcome's base rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from examination_fixtures import MAPPING, PEPPER, examination_extract

from chronorisk.data.extract import import_extract
from chronorisk.data.mapping import load_mapping, with_source
from chronorisk.model.product import ProductSpec, load_product
from training.extract_snapshot import build_extract_snapshot


def _imported(tmp_path, positives: int):  # type: ignore[no-untyped-def]
    """The examination extract with its first `positives` of 300 rows diabetic, imported."""
    frame = examination_extract()
    frame["Outcome"] = (np.arange(len(frame)) < positives).astype(int)
    csv = tmp_path / "exam.csv"
    frame.to_csv(csv, index=False)
    out = tmp_path / "raw"
    import_extract(with_source(load_mapping(MAPPING), csv), MAPPING, out, pepper=PEPPER)
    return out


def test_an_incident_product_refuses_a_current_outcome(tmp_path):
    out = _imported(tmp_path, 90)
    with pytest.raises(ValueError, match=r"product byod_diabetes learns type 2 diabetes within 3 years "
                                         r"\(outcome_timing: incident\), but the extract's outcome is current"):
        build_extract_snapshot(out, load_product("byod_diabetes"), tmp_path / "snap.parquet", pepper=PEPPER)
    assert not (tmp_path / "snap.parquet").exists()


def test_a_screening_product_takes_it_without_a_warning_when_the_base_rate_sits_mid_classes(tmp_path):
    out = _imported(tmp_path, 90)  # 30 %: the screening product's 'likely' class (25-50 %), not an end class
    notes: list[str] = []
    counts = build_extract_snapshot(out, load_product("diabetes_screening"), tmp_path / "snap.parquet",
                                    pepper=PEPPER, warn=notes.append)
    assert (counts["rows"], counts["positives"]) == (300, 90)
    assert notes == []


def test_a_base_rate_in_the_top_class_is_a_clear_warning(tmp_path):
    out = _imported(tmp_path, 210)  # 70 %: at or above 50 %, the screening product's top class
    notes: list[str] = []
    build_extract_snapshot(out, load_product("diabetes_screening"), tmp_path / "snap.parquet", pepper=PEPPER,
                           warn=notes.append)
    assert len(notes) == 1
    assert notes[0].startswith("the outcome's base rate 70.0% (type 2 diabetes at the index date (screening)) is in "
                               "risk class 'probable' (50.0% and above, decision decline)")
    assert "most applicants will fall in that one class; set the risk classes of product diabetes_screening for " \
           "this rate" in notes[0]
    assert "rather than incident" not in notes[0]  # a screening product's outcome is current already


def test_an_incident_product_s_top_class_asks_whether_the_outcome_is_current():
    note = load_product("byod_diabetes").base_rate_warning(0.35)
    assert note is not None and note.endswith("(is the extract's outcome current rather than incident?)")
    assert load_product("byod_diabetes").base_rate_warning(0.05) is None  # 'rated' (3-8 %): a middle class


def test_a_mapping_that_does_not_say_is_taken_as_the_product_s_with_a_warning(tmp_path):
    raw = yaml.safe_load(MAPPING.read_text())
    del raw["outcome"]["timing"]
    raw["source"]["path"] = str(tmp_path / "exam.csv")
    examination_extract().to_csv(tmp_path / "exam.csv", index=False)
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(yaml.safe_dump(raw))
    import_extract(load_mapping(mapping), mapping, tmp_path / "raw", pepper=PEPPER)
    notes: list[str] = []
    build_extract_snapshot(tmp_path / "raw", load_product("diabetes_screening"), tmp_path / "snap.parquet",
                           pepper=PEPPER, warn=notes.append)
    assert notes[0] == ("the mapping does not say whether its outcome is incident or current (outcome.timing); "
                        "taken as the product's: type 2 diabetes at the index date (screening)")


def test_most_scored_applicants_in_one_class_is_a_warning():
    spec = load_product("diabetes")  # classes: below 1 %, 3 %, 8 %, 15 %, then uninsurable
    six_of_ten = np.array([0.2] * 6 + [0.005] * 4)
    assert spec.class_mix_warning(six_of_ten) == (
        "60% of 10 applicants fall in risk class 'uninsurable' (mean probability 12.2%, type 2 diabetes within 3 "
        "years): check the risk classes against the outcome's base rate")
    assert spec.class_mix_warning(np.array([0.2] * 5 + [0.005] * 5)) is None  # half is not most


def test_a_current_outcome_needs_an_extract():
    raw = yaml.safe_load(Path("experiments/products/diabetes.yaml").read_text())
    raw["outcome_timing"] = "current"
    with pytest.raises(ValueError, match="outcome_timing: current needs outcome: extract"):
        ProductSpec.model_validate(raw)


def test_eligibility_follows_the_outcome():
    screening, incident, event = (load_product(p) for p in ("diabetes_screening", "byod_diabetes", "diabetes"))
    assert (screening.excludes_prevalent, screening.min_history_days) == (False, 0)
    assert (incident.excludes_prevalent, incident.min_history_days) == (True, 0)  # applicants: no history
    assert (event.excludes_prevalent, event.min_history_days) == (True, 365)
    assert pd.Series([screening.outcome_timing, event.outcome_timing]).tolist() == ["current", "incident"]

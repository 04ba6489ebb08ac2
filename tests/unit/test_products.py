"""Product specs: a typo is an error naming the key, and a new product is a YAML file alone."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from chronorisk.model.product import load_product
from training.labels import label_index_dates


def _write(tmp_path: Path, name: str, mutate) -> Path:
    raw = yaml.safe_load(Path("experiments/products/diabetes.yaml").read_text())
    mutate(raw)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_both_shipped_products_load():
    assert load_product("diabetes").horizon_years == 3
    assert load_product("hypertension").event.high_readings is not None


def test_a_misspelt_key_is_named_in_the_error(tmp_path):
    path = _write(tmp_path, "typo", lambda r: r.update({"horizon_year": 3}))
    with pytest.raises(ValueError, match="horizon_year"):
        load_product(path)


def test_an_unknown_lab_test_is_refused(tmp_path):
    path = _write(tmp_path, "lab", lambda r: r["event"]["lab_thresholds"].append({"test": "hba1", "at_least": 6.5}))
    with pytest.raises(ValueError, match="unknown lab test 'hba1'"):
        load_product(path)


def test_risk_classes_must_ascend_to_certainty(tmp_path):
    path = _write(tmp_path, "classes", lambda r: r["risk_classes"].pop())
    with pytest.raises(ValueError, match="last class must reach probability 1"):
        load_product(path)


def test_a_split_that_does_not_cover_the_index_dates_is_refused(tmp_path):
    path = _write(tmp_path, "split", lambda r: r["split"].update({"test": []}))
    with pytest.raises(ValueError, match="split"):
        load_product(path)


def test_risk_class_boundaries_are_exclusive_upper_bounds():
    spec = load_product("diabetes")
    assert spec.risk_class(0.0099).name == "preferred"
    assert spec.risk_class(0.01).name == "standard"
    assert spec.risk_class(0.9999).name == "uninsurable"


def test_a_third_product_is_yaml_alone(tmp_path, cohort, pepper):
    """Dyslipidaemia cover from a YAML file: labels come out of the same code, no new code."""
    from chronorisk.data.contracts import validate_tables

    def dyslipidaemia(raw: dict) -> None:
        raw.update({"name": "dyslipidaemia", "title": "Dyslipidaemia cover", "disease": "dyslipidaemia",
                    "baseline_score": None,
                    "event": {"icd10_prefixes": ["E78"], "atc_prefixes": ["C10"],
                              "lab_thresholds": [{"test": "ldl", "at_least": 4.9}]}})

    spec = load_product(_write(tmp_path, "dyslipidaemia", dyslipidaemia))
    accepted, _, _ = validate_tables(cohort, extract_date=date(2024, 12, 31), pepper=pepper)
    rows = label_index_dates(accepted, spec, date(2024, 12, 31)).rows.set_index(["member_id", "index_date"])
    # M-1004's first E78.5 / C10AA05 is on 2019-11-12: an event in the window of 2019-01-01.
    import pandas as pd

    assert rows.loc[("M-1004", pd.Timestamp("2019-01-01")), "event_date"] == pd.Timestamp("2019-11-12")

"""The mapping YAML (decision 19) is validated data: a typo or an impossible unit is an error naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chronorisk.data.mapping import load_mapping

EXAMPLE = Path("experiments/mappings/example_flat.yaml")


def _with(tmp_path: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    raw = yaml.safe_load(EXAMPLE.read_text())
    edit(raw)
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_the_documented_example_mapping_validates_and_resolves_its_source_beside_itself():
    mapping = load_mapping(EXAMPLE)
    assert mapping.kind == "flat" and list(mapping.custom_features) == ["skinfold_mm"]
    assert mapping.source.path == (EXAMPLE.parent / "../../data/byod/example_flat.csv").resolve()


def test_a_misspelt_key_is_an_error_naming_it(tmp_path):
    path = _with(tmp_path, lambda raw: raw["tables"]["members"]["columns"]["sex"].update(code={"f": "F"}))
    with pytest.raises(ValueError, match=r"tables\.members\.columns\.sex\.code: Extra inputs are not permitted"):
        load_mapping(path)


def test_a_unit_the_contracts_cannot_convert_is_refused(tmp_path):
    path = _with(tmp_path, lambda raw: raw["tables"]["lab_results"]["columns"]["fasting_glucose"].update(unit="g/L"))
    with pytest.raises(ValueError, match=r"fasting_glucose\.unit: 'g/L' is not a unit of fasting_glucose"):
        load_mapping(path)


def test_a_column_the_contract_does_not_have_is_refused(tmp_path):
    path = _with(tmp_path, lambda raw: raw["tables"]["consultations"]["columns"].update(pulse={"column": "HR"}))
    with pytest.raises(ValueError, match=r"tables\.consultations\.columns\.pulse: not a column"):
        load_mapping(path)


def test_a_flat_extract_needs_its_member_and_index_date(tmp_path):
    path = _with(tmp_path, lambda raw: raw.pop("index_date"))
    with pytest.raises(ValueError, match="a flat extract needs member_id and index_date"):
        load_mapping(path)


def test_a_custom_feature_needs_a_valid_direction_and_a_reason_placeholder(tmp_path):
    path = _with(tmp_path, lambda raw: raw["custom_features"]["skinfold_mm"].update(direction=2))
    with pytest.raises(ValueError, match=r"custom_features\.skinfold_mm\.direction"):
        load_mapping(path)
    path = _with(tmp_path, lambda raw: raw["custom_features"]["skinfold_mm"].update(reason="Skinfold"))
    with pytest.raises(ValueError, match=r"custom_features\.skinfold_mm\.reason: .*\{value\} placeholder"):
        load_mapping(path)

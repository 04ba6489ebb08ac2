"""A real-shaped flat extract (issue 15): no id column, BMI and a 2-hour OGTT as such, duplicates,
one impossible value, imported through the real CLI with a native mapping and no custom features."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from examination_fixtures import BAD_ROW, DUPLICATES, MAPPING, PEPPER, ROWS, examination_extract
from typer.testing import CliRunner

from chronorisk.cli import app
from chronorisk.data.contracts import ContractError, validate_tables
from chronorisk.data.extract import EXTRACT_DIR, import_extract
from chronorisk.data.mapping import load_mapping, with_source
from chronorisk.data.rejections import QUARANTINE_DIR
from features.build import compute_features
from training.extract_snapshot import imported_tables


@pytest.fixture
def imported(tmp_path, monkeypatch):
    monkeypatch.setenv("CHRONORISK_ENVIRONMENT", "test")
    monkeypatch.setenv("CHRONORISK_ID_PEPPER", PEPPER.decode())
    csv = tmp_path / "exam.csv"
    examination_extract().to_csv(csv, index=False)
    out = tmp_path / "raw"
    result = CliRunner().invoke(app, ["import", "--mapping", str(MAPPING), "--source", str(csv), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, csv, _words(result.output)


def _words(text: str) -> str:
    """The CLI's output as words: the table's rules and borders gone."""
    return " ".join("".join(" " if ord(ch) in range(0x2500, 0x2580) else ch for ch in text).split())


def test_the_example_mapping_is_native():
    mapping = load_mapping(MAPPING)
    assert mapping.custom_features == {} and mapping.tables["lab_results"].columns["ogtt_2h_glucose"].unit == "mg/dL"


def test_counts_reconcile_and_the_impossible_diastolic_is_quarantined_with_its_reason(imported):
    out, _, printed = imported
    members = pd.read_parquet(out / "members.parquet")
    assert len(members) == ROWS and members["member_id"].is_unique  # generated ids, duplicates included
    assert members["member_id"].iloc[BAD_ROW] == f"exam-{BAD_ROW}"
    quarantined = pd.read_parquet(out / QUARANTINE_DIR / "consultations.parquet")
    assert quarantined["reason"].tolist() == ["out_of_range:dbp_mmhg"]
    assert quarantined["source_row"].tolist() == [BAD_ROW]
    assert "member_id" not in quarantined.columns
    assert not (out / QUARANTINE_DIR / "members.parquet").exists()
    # the CLI's table: read, accepted, rejected, member_rejected per table; 299 glucose values (row 3 has none)
    assert "members 300 300 0 0" in printed
    assert "consultations 300 299 1 0 out_of_range:dbp_mmhg 1" in printed
    assert "lab_results 299 299 0 0" in printed
    assert "12 rows repeat an earlier row's content" in printed


def test_duplicates_are_reported_by_position(imported):
    out, _, _ = imported
    dups = pd.read_parquet(out / EXTRACT_DIR / "duplicates.parquet")
    assert dups["source_row"].tolist() == list(range(288, 300))
    assert dups["first_row"].tolist() == list(range(0, 120, 10))


def test_strict_mode_refuses_the_duplicates_and_writes_nothing(tmp_path, monkeypatch, imported):
    _, csv, _ = imported
    out = tmp_path / "strict"
    result = CliRunner().invoke(app, ["import", "--mapping", str(MAPPING), "--source", str(csv), "--out", str(out),
                                      "--strict"])
    printed = _words(result.output)
    assert result.exit_code == 1
    assert "12 rows repeat an earlier row's content under another id (rule: duplicate_content" in printed
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".strict")]


def test_bmi_ogtt_and_the_other_measurements_are_built_in_features(imported):
    out, _, _ = imported
    tables, specs, _ = imported_tables(out, PEPPER)
    assert specs == []  # no custom features
    raw = examination_extract()
    ids = [f"exam-{i}" for i in (0, 3, BAD_ROW)]
    rows = compute_features(tables, pd.DataFrame({"member_id": ids, "index_date": pd.Timestamp("2024-07-01")}))
    first, unmeasured, bad = (rows.iloc[i] for i in range(3))
    assert first["ogtt_2h_glucose_mmol_l_latest"] == pytest.approx(raw.loc[0, "Glucose"] / 18.016)
    assert first["bmi_latest"] == raw.loc[0, "BMI"]
    assert first["dbp_mmhg_latest"] == raw.loc[0, "BloodPressure"]
    assert first["triceps_skinfold_mm_latest"] == raw.loc[0, "SkinThickness"]
    assert first["pregnancies_latest"] == raw.loc[0, "Pregnancies"]
    assert first["family_history_score"] == pytest.approx(0.100)
    assert first["age_years"] == pytest.approx(raw.loc[0, "Age"], abs=0.01)
    assert np.isnan(unmeasured["ogtt_2h_glucose_mmol_l_latest"]) and np.isnan(unmeasured["triceps_skinfold_mm_latest"])
    assert unmeasured["bmi_latest"] == raw.loc[3, "BMI"]
    # the quarantined examination is not read: no blood pressure, and no BMI from that row either
    assert np.isnan(bad["dbp_mmhg_latest"]) and np.isnan(bad["bmi_latest"])
    assert bad["ogtt_2h_glucose_mmol_l_latest"] == pytest.approx(raw.loc[BAD_ROW, "Glucose"] / 18.016)


def test_a_missing_required_column_says_a_constant_works_and_lists_the_codes(tmp_path):
    text = MAPPING.read_text().replace("      region: {value: central}", "")
    path = tmp_path / "mapping.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        load_mapping(path)
    message = str(err.value)
    assert "tables.members.columns.region: required by the members contract" in message
    assert "give a constant ({value: ...})" in message
    assert "allowed codes: north, northeast, east, south, central, southwest, northwest" in message


def test_a_constant_outside_the_code_list_is_refused_without_echoing_it(tmp_path):
    path = tmp_path / "mapping.yaml"
    path.write_text(MAPPING.read_text().replace("{value: central}", "{value: Zentralregion}"))
    with pytest.raises(ValueError) as err:
        load_mapping(path)
    assert "tables.members.columns.region.value: 1 code(s) the members contract does not accept" in str(err.value)
    assert "Zentralregion" not in str(err.value)


def test_a_failed_import_leaves_the_earlier_import_untouched(imported, monkeypatch):
    out, csv, _ = imported
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    broken = csv.with_name("broken.csv")
    examination_extract().drop(columns=["Outcome"]).to_csv(broken, index=False)
    result = CliRunner().invoke(app, ["import", "--mapping", str(MAPPING), "--source", str(broken), "--out", str(out)])
    assert result.exit_code == 1 and "outcome.column" in result.output
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".raw")]


def test_strict_mode_refuses_the_impossible_diastolic_naming_table_column_rule_and_count(tmp_path, imported):
    csv = tmp_path / "distinct.csv"
    examination_extract().iloc[: ROWS - DUPLICATES].to_csv(csv, index=False)  # no duplicates left
    out = tmp_path / "strict"
    result = CliRunner().invoke(app, ["import", "--mapping", str(MAPPING), "--source", str(csv), "--out", str(out),
                                      "--strict"])
    assert result.exit_code == 1
    assert "consultations.dbp_mmhg: 1 row breaks out_of_range (dbp_mmhg 30-160 mmHg" in _words(result.output)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".strict")]


def test_a_pulse_maps_to_the_consultation_and_device_days_are_refused_in_a_flat_extract(tmp_path):
    frame = examination_extract().assign(Pulse=72)
    csv = tmp_path / "exam.csv"
    frame.to_csv(csv, index=False)
    pulse = "      pregnancies: {column: Pregnancies}\n      heart_rate_bpm: {column: Pulse}"
    text = MAPPING.read_text().replace("      pregnancies: {column: Pregnancies}", pulse)
    path = tmp_path / "mapping.yaml"
    path.write_text(text)
    import_extract(with_source(load_mapping(path), csv), path, tmp_path / "raw", pepper=PEPPER)
    tables, _, _ = imported_tables(tmp_path / "raw", PEPPER)
    row = compute_features(tables, pd.DataFrame({"member_id": ["exam-0"], "index_date": [pd.Timestamp("2024-07-01")]}))
    assert row.loc[0, "heart_rate_bpm_latest"] == 72.0
    path.write_text(text + "  wearable_daily:\n    columns:\n      resting_hr: {column: Pulse}\n")
    with pytest.raises(ValueError, match=r"tables\.wearable_daily: a flat extract has one row per applicant"):
        load_mapping(path)


def test_a_raw_folder_missing_a_required_coded_column_names_the_codes(cohort, pepper):
    cohort["members"] = cohort["members"].drop(columns=["region"])
    with pytest.raises(ContractError) as err:
        validate_tables(cohort, extract_date=date(2024, 12, 31), pepper=pepper)
    assert str(err.value) == ("members.region: required column is missing (6 rows unusable); add it, or in an import "
                              "mapping give a column or a constant (tables.members.columns.region: {value: ...}); "
                              "allowed codes: north, northeast, east, south, central, southwest, northwest")

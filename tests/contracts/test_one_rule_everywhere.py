"""One contract, one message: a diastolic of 24 mmHg is the same broken rule with the same words
for the import, for batch scoring (which refuses the member, as the service refuses the applicant,
instead of scoring without the row) and for the contracts' own reports; reasons print values at
the precision they were recorded to."""

from __future__ import annotations

from datetime import date

import pandas as pd
from examination_fixtures import BAD_ROW, MAPPING, PEPPER, examination_extract
from typer.testing import CliRunner

from chronorisk.cli import app
from chronorisk.data.contracts import rule_message
from chronorisk.data.extract import import_extract
from chronorisk.data.mapping import CustomFeature, load_mapping, with_source
from chronorisk.data.pseudonym import member_ref
from features.custom import custom_registry
from features.registry import default_registry
from features.runners import CONTRACT_REASONS, build_features_at
from training.extract_snapshot import imported_features_at

DBP = "consultations.dbp_mmhg: out_of_range (dbp_mmhg 30-160 mmHg and dbp_mmhg below sbp_mmhg)"


def test_the_rule_s_message_names_table_column_rule_and_bounds_never_the_value():
    assert rule_message("consultations", "out_of_range:dbp_mmhg") == DBP
    assert rule_message("lab_results", "out_of_range:ogtt_2h_glucose") == \
        "lab_results.value: out_of_range (ogtt_2h_glucose 1.5-50 mmol/L)"
    assert rule_message("members", "unknown_code:region") == \
        "members.region: unknown_code (allowed: north, northeast, east, south, central, southwest, northwest)"


def test_the_import_prints_that_message(tmp_path, monkeypatch):
    monkeypatch.setenv("CHRONORISK_ENVIRONMENT", "test")
    monkeypatch.setenv("CHRONORISK_ID_PEPPER", PEPPER.decode())
    csv = tmp_path / "exam.csv"
    examination_extract().to_csv(csv, index=False)
    result = CliRunner().invoke(app, ["import", "--mapping", str(MAPPING), "--source", str(csv),
                                      "--out", str(tmp_path / "raw")])
    assert result.exit_code == 0, result.output
    assert f"{DBP}: 1 row quarantined" in " ".join(result.output.split())


def test_batch_scoring_of_an_import_refuses_the_member_with_the_same_message(tmp_path):
    csv = tmp_path / "exam.csv"
    examination_extract().to_csv(csv, index=False)
    import_extract(with_source(load_mapping(MAPPING), csv), MAPPING, tmp_path / "raw", pepper=PEPPER)
    frame = imported_features_at(tmp_path / "raw", date(2024, 7, 1), default_registry(), PEPPER,
                                 contract_reasons=True).set_index("member_id")
    assert frame.loc[f"exam-{BAD_ROW}", CONTRACT_REASONS] == DBP
    assert (frame.drop(index=f"exam-{BAD_ROW}")[CONTRACT_REASONS] == "").all()
    assert len(frame) == 300


def test_batch_scoring_of_a_raw_folder_refuses_the_member_with_the_same_message(tmp_path, cohort, write_folder,
                                                                                pepper):
    cohort["consultations"].loc[4, "dbp_mmhg"] = 24.0  # M-1003, 2020-01-02
    bad_member = cohort["consultations"].loc[4, "member_id"]
    folder = write_folder(cohort, tmp_path / "raw")
    out = tmp_path / "features.parquet"
    build_features_at(folder, date(2021, 1, 1), out, extract_date=date(2024, 12, 31), pepper=pepper,
                      contract_reasons=True, progress=False)
    frame = pd.read_parquet(out).set_index("member_id")
    assert frame.loc[bad_member, CONTRACT_REASONS] == DBP
    assert (frame.drop(index=bad_member)[CONTRACT_REASONS] == "").all()
    build_features_at(folder, date(2021, 1, 1), out, extract_date=date(2024, 12, 31), pepper=pepper, progress=False)
    assert CONTRACT_REASONS not in pd.read_parquet(out).columns  # feature builds for training are unchanged
    assert member_ref(bad_member, pepper) != bad_member


def test_reasons_print_values_as_recorded():
    pedigree = CustomFeature(column="DPF", unit="score", description="Diabetes pedigree function", direction=1,
                             reason="Family-history score: {value}").spec("pedigree")
    assert pedigree.reason_text(0.627) == "Family-history score: 0.627"
    skinfold = CustomFeature(column="SF", unit="mm", description="Triceps skinfold", direction=1,
                             reason="Triceps skinfold: {value}").spec("skinfold")
    assert skinfold.reason_text(21.5) == "Triceps skinfold: 21.5 mm"
    assert skinfold.reason_text(1234.0) == "Triceps skinfold: 1,234 mm"
    fixed = CustomFeature(column="SF", unit="mm", description="Triceps skinfold", direction=1,
                          reason="Triceps skinfold: {value}", decimals=2).spec("skinfold")
    assert fixed.reason_text(21.5) == "Triceps skinfold: 21.50 mm"
    assert custom_registry([]) ["family_history_score"].reason_text(0.627) == "Family-history score: 0.627"
    assert default_registry()["ogtt_2h_glucose_mmol_l_latest"].reason_text(8.26) == \
        "Latest 2-hour OGTT glucose: 8.26 mmol/L"


def test_data_validate_prints_the_same_message(tmp_path, cohort, write_folder, monkeypatch):
    monkeypatch.setenv("CHRONORISK_ENVIRONMENT", "test")
    cohort["consultations"].loc[4, "dbp_mmhg"] = 24.0
    folder = write_folder(cohort, tmp_path / "raw")
    result = CliRunner().invoke(app, ["data", "validate", str(folder)])
    assert result.exit_code == 0, result.output
    assert f"{DBP}: 1 row quarantined" in " ".join(result.output.split())

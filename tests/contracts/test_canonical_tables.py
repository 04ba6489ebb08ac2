"""What the feature code receives: accepted rows in canonical columns, dtypes and units."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from chronorisk.data.contracts import CONTRACTS, ContractError, load_raw, validate_folder


def test_consultations_in_pounds_and_inches_arrive_in_kilograms_and_centimetres(
        cohort, tmp_path, write_folder, pepper):
    c = cohort["consultations"].drop(columns=["weight_kg", "height_cm", "waist_cm"])
    c["weight_lb"] = [200.0] + [150.0] * 11
    c["height_in"] = [70.0] + [65.0] * 11
    c["waist_in"] = [34.0] + [32.0] * 11
    cohort["consultations"] = c
    raw, _ = load_raw(write_folder(cohort, tmp_path / "raw"), pepper=pepper)
    first = raw.consultations.iloc[0]
    assert (first["weight_kg"], first["height_cm"], first["waist_cm"]) == pytest.approx((90.718474, 177.8, 86.36))


def test_converted_weights_face_the_same_range_rule(cohort, tmp_path, write_folder, pepper):
    # 700 lb = 317.5 kg, above the 300 kg bound
    cohort["consultations"] = cohort["consultations"].drop(columns=["weight_kg"]).assign(
        weight_lb=[700.0] + [150.0] * 11)
    report = validate_folder(write_folder(cohort, tmp_path / "raw"), pepper=pepper)
    assert report.tables["consultations"].by_rule == {"out_of_range:weight_kg": 1}


def test_lab_values_arrive_in_canonical_units(cohort, tmp_path, write_folder, pepper):
    raw, _ = load_raw(write_folder(cohort, tmp_path / "raw"), pepper=pepper)
    labs = raw.lab_results
    # row 0: 48 mmol/mol -> 6.5420 %; row 3: 126 mg/dL glucose -> 6.9938; row 5: 50 "MG/DL " hdl -> 1.2930
    assert labs["value"].iloc[[0, 3, 5]].tolist() == pytest.approx([6.5420, 6.9938, 1.2930], abs=1e-4)
    assert labs["unit"].iloc[[0, 3, 5, 11]].tolist() == ["%", "mmol/L", "mmol/L", "mL/min/1.73m2"]


def test_accepted_tables_have_the_contract_columns_and_canonical_dtypes(cohort, tmp_path, write_folder, pepper):
    raw, _ = load_raw(write_folder(cohort, tmp_path / "raw", "csv"), pepper=pepper)
    w = raw.wearable_daily
    assert list(w.columns) == list(CONTRACTS["wearable_daily"].columns)
    assert (str(w["date"].dtype), str(w["steps"].dtype), str(raw.applications["smoker"].dtype)) == (
        "datetime64[s]", "Int64", "boolean")


def test_a_missing_optional_table_is_an_empty_frame_with_the_contract_columns(
        cohort, tmp_path, write_folder, pepper):
    del cohort["wearable_daily"]
    raw, report = load_raw(write_folder(cohort, tmp_path / "raw"), pepper=pepper)
    assert (len(raw.wearable_daily), list(raw.wearable_daily.columns), report.tables["wearable_daily"].read) == (
        0, list(CONTRACTS["wearable_daily"].columns), 0)


def test_a_folder_without_members_cannot_be_validated(cohort, tmp_path, write_folder, pepper):
    del cohort["members"]
    with pytest.raises(ContractError, match="members"):
        validate_folder(write_folder(cohort, tmp_path / "raw"), pepper=pepper)


def test_underscore_entries_of_a_raw_folder_are_never_read(cohort, tmp_path, write_folder, pepper):
    folder = write_folder(cohort, tmp_path / "raw")
    (folder / "_truth").mkdir()
    pd.DataFrame({"member_id": [None], "steps": [-1]}).to_parquet(folder / "_truth" / "wearable_daily.parquet")
    (folder / "_wearable_daily.csv").write_text("member_id,steps\n,-1\n")
    assert validate_folder(folder, pepper=pepper).clean


def test_the_manifest_extract_date_bounds_future_records(cohort, tmp_path, write_folder, pepper):
    folder = write_folder(cohort, tmp_path / "raw")
    (folder / "_manifest.json").write_text('{"extract_date": "2023-06-01"}')
    report = validate_folder(folder, pepper=pepper)
    # only consultation C-0012 (2023-12-13) is dated after 2023-06-01
    assert (report.extract_date, report.tables["consultations"].by_rule) == (
        date(2023, 6, 1), {"future_date:date": 1})


def test_an_explicit_extract_date_overrides_the_manifest(cohort, tmp_path, write_folder, pepper):
    folder = write_folder(cohort, tmp_path / "raw")
    report = validate_folder(folder, extract_date=date(2023, 6, 1), pepper=pepper)
    assert report.extract_date == date(2023, 6, 1)

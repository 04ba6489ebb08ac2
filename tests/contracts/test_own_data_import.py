"""Own data (issue 7): an insurer's extract, flat or relational, in its own names, units and codes,
gives the features our own raw folders give for the same members; bad rows are quarantined."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from own_data_fixtures import PEPPER, RAW_TABLES

from chronorisk.data.contracts import load_raw
from chronorisk.data.extract import EXTRACT_DIR, import_extract, read_imported
from chronorisk.data.mapping import load_mapping
from chronorisk.data.rejections import QUARANTINE_DIR
from features.build import compute_features
from features.custom import custom_registry
from features.registry import default_registry
from training.extract_snapshot import imported_tables


def _features_of_folder(folder: Path, pairs: pd.DataFrame) -> pd.DataFrame:
    raw, _ = load_raw(folder, pepper=PEPPER, extract_date=date(2024, 12, 31))
    return compute_features({n: getattr(raw, n) for n in RAW_TABLES}, pairs)


def test_a_flat_extract_in_foreign_units_gives_the_relational_features(own_data):
    tables, specs, _ = imported_tables(own_data.imported, PEPPER)
    _, outcomes, _ = read_imported(own_data.imported)
    assert outcomes is not None
    pairs = outcomes[["member_id", "index_date"]]
    flat = compute_features(tables, pairs, custom_registry(specs))
    reference = _features_of_folder(own_data.relational, pairs)
    assert len(flat) == len(own_data.snapshots) > 500
    for name in default_registry().names():
        same = np.isclose(flat[name], reference[name], rtol=1e-12, atol=0, equal_nan=True)
        assert same.all(), f"{name}: {int((~same).sum())} members differ"


def test_the_custom_feature_and_the_outcome_are_the_extract_s_own(own_data):
    tables, specs, _ = imported_tables(own_data.imported, PEPPER)
    _, outcomes, _ = read_imported(own_data.imported)
    assert outcomes is not None and [s.name for s in specs] == ["skinfold_mm"]
    flat = compute_features(tables, outcomes[["member_id", "index_date"]], custom_registry(specs))
    snap = own_data.snapshots.set_index("member_id")
    got = flat.set_index("member_id")["skinfold_mm"]
    np.testing.assert_array_equal(got.to_numpy(), snap.loc[got.index, "skinfold_mm"].to_numpy())
    labels = outcomes.set_index("member_id")["label"]
    np.testing.assert_array_equal(labels.to_numpy(), snap.loc[labels.index, "label"].to_numpy())
    assert (outcomes["index_date"] == pd.to_datetime(snap.loc[outcomes["member_id"], "application_date"]).to_numpy()
            + np.timedelta64(1, "D")).all()


def _write_flat_rows(tmp_path: Path, rows: list[dict[str, object]]) -> Path:
    csv = tmp_path / "rows.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    raw = yaml.safe_load(Path("experiments/mappings/example_flat.yaml").read_text())
    raw["source"]["path"] = str(csv)
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


GOOD = {"ApplicantNo": "A-1", "AppDate": "15/05/2021", "DOB": "02/01/1970", "Gender": "male", "Province": "east",
        "FamilyDM": "2nd", "Exercise30": "N", "VegDaily": "Y", "BPTreated": "N", "HighSugarEver": "N", "Smoker": "N",
        "WaistSelf": 96, "HeightSelf": 175, "WeightSelfLb": 180, "ExamWeightLb": 176, "ExamHeight": 175,
        "ExamWaist": 97, "SysBP": 132, "DiaBP": 84, "HbA1cPct": 5.9, "FPG_mgdl": 126, "HDL": 1.1, "TG": 1.8,
        "TricepsSkinfold": 21.5, "DMWithin3y": "N"}


def test_one_flat_row_converts_to_hand_computed_canonical_units(tmp_path):
    mapping = _write_flat_rows(tmp_path, [GOOD])
    import_extract(load_mapping(mapping), mapping, tmp_path / "out", pepper=PEPPER)
    tables, specs, _ = imported_tables(tmp_path / "out", PEPPER)
    row = compute_features(tables, pd.DataFrame({"member_id": ["A-1"], "index_date": [pd.Timestamp("2021-05-16")]}),
                           custom_registry(specs)).iloc[0]
    assert row["fasting_glucose_mmol_l_latest"] == pytest.approx(126 / 18.016)  # 6.9938 mmol/L
    assert row["bmi_latest"] == pytest.approx(176 * 0.45359237 / 1.75**2)  # 79.83 kg at 175 cm
    assert row["q_bmi"] == pytest.approx(180 * 0.45359237 / 1.75**2)
    assert row["age_years"] == pytest.approx((pd.Timestamp("2021-05-16") - pd.Timestamp("1970-01-02")).days / 365.25)
    assert row["q_family_history_level"] == 1.0  # "2nd" -> second_degree
    assert row["sex_male"] == 1.0
    assert row["skinfold_mm"] == 21.5
    # the application date itself is before the index date; the day before the application sees nothing
    early = compute_features(tables, pd.DataFrame({"member_id": ["A-1"], "index_date": [pd.Timestamp("2021-05-15")]}),
                             custom_registry(specs)).iloc[0]
    assert np.isnan(early["fasting_glucose_mmol_l_latest"]) and np.isnan(early["skinfold_mm"])


def test_bad_flat_rows_are_quarantined_with_their_reasons(tmp_path):
    rows = [GOOD,
            {**GOOD, "ApplicantNo": "A-2", "Gender": "unknown"},  # a code the mapping does not translate
            {**GOOD, "ApplicantNo": "A-3", "FPG_mgdl": "12O"},  # not a number (a letter O)
            {**GOOD, "ApplicantNo": "A-4", "TricepsSkinfold": 400},  # outside the declared range
            {**GOOD, "ApplicantNo": "A-5", "AppDate": "31/02/2021"}]  # no such day
    mapping = _write_flat_rows(tmp_path, rows)
    report = import_extract(load_mapping(mapping), mapping, tmp_path / "out", pepper=PEPPER)
    members = report.validation.tables["members"]
    assert (members.read, members.accepted, members.rejected) == (5, 3, 2)
    assert members.by_rule == {"invalid_date:enrollment_start": 1, "unknown_code:sex": 1}
    labs = report.validation.tables["lab_results"]
    # A-5's four lab rows carry the impossible date themselves; A-2's are refused with their member
    assert labs.by_rule == {"invalid_date:date": 4, "invalid_number:value": 1}
    assert labs.member_rejected == 4
    assert labs.read == labs.accepted + labs.rejected + labs.member_rejected
    assert report.custom == {"read": 5, "accepted": 2, "rejected": 3}
    custom = pd.read_parquet(tmp_path / "out" / QUARANTINE_DIR / "custom_measurements.parquet")
    assert sorted(custom["reason"]) == ["invalid_date:date", "member_rejected", "out_of_range:skinfold_mm"]
    assert "member_id" not in custom.columns
    quarantined = pd.read_parquet(tmp_path / "out" / QUARANTINE_DIR / "members.parquet")
    assert sorted(quarantined["reason"]) == ["invalid_date:enrollment_start", "unknown_code:sex"]
    assert report.outcomes == 3  # outcomes only for members the contracts accepted


def test_only_mapped_columns_reach_the_raw_folder(tmp_path):
    canary = "Wang Fang 13912345678"
    mapping = _write_flat_rows(tmp_path, [{**GOOD, "FullName": canary, "Phone": "13912345678"}])
    import_extract(load_mapping(mapping), mapping, tmp_path / "out", pepper=PEPPER)
    for path in (tmp_path / "out").rglob("*.parquet"):
        assert b"13912345678" not in path.read_bytes(), path
        assert canary not in pd.read_parquet(path).astype("str").to_string(), path


def _relational_extract(cohort: Path, folder: Path) -> Path:
    """The synthetic cohort as another insurer keeps it: renamed files and columns, its own sex codes,
    weights in lb, glucose in mg/dL with the unit in lower case, day-first dates, extra columns."""
    folder.mkdir(parents=True)
    raw, _ = load_raw(cohort, pepper=PEPPER)
    members = raw.members.iloc[:300]
    ids = set(members["member_id"])
    day_first = "%d/%m/%Y"

    def mine(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[frame["member_id"].isin(ids)].reset_index(drop=True)

    pd.DataFrame({"pid": members["member_id"], "born": members["birth_date"].dt.strftime(day_first),
                  "gender": members["sex"].map({"F": 2, "M": 1}), "area": members["region"],
                  "start": members["enrollment_start"].dt.strftime(day_first),
                  "end": members["enrollment_end"].dt.strftime(day_first),
                  "fh_dm": members["family_history_diabetes"], "fh_htn": members["family_history_hypertension"],
                  "surname": "Li"}).to_csv(folder / "policyholders.csv", index=False)
    visits = mine(raw.consultations)
    pd.DataFrame({"visit": visits["consultation_id"], "pid": visits["member_id"],
                  "seen": visits["date"].dt.strftime(day_first), "setting": visits["channel"],
                  "dx": visits["icd10_codes"], "rx": visits["atc_codes"], "wt_lb": visits["weight_kg"] / 0.45359237,
                  "ht": visits["height_cm"], "waist": visits["waist_cm"], "sys": visits["sbp_mmhg"],
                  "dia": visits["dbp_mmhg"], "smoke": visits["smoking_status"]}).to_csv(folder / "visits.csv",
                                                                                         index=False)
    labs = mine(raw.lab_results)
    glucose = (labs["test"] == "fasting_glucose").to_numpy()
    pd.DataFrame({"pid": labs["member_id"], "drawn": labs["date"].dt.strftime(day_first),
                  "analyte": labs["test"].replace({"fasting_glucose": "GLU", "hba1c": "A1C"}),
                  "result": np.where(glucose, labs["value"] * 18.016, labs["value"]),
                  "units": np.where(glucose, "mg/dl", labs["unit"])}).to_parquet(folder / "labs.parquet")
    mine(raw.applications).rename(columns={"member_id": "pid", "application_date": "applied"}).assign(
        applied=lambda f: f["applied"].dt.strftime(day_first)).to_csv(folder / "forms.csv", index=False)
    wear = mine(raw.wearable_daily)
    wear.rename(columns={"member_id": "pid", "date": "day", "steps": "step_count"}).assign(
        day=lambda f: f["day"].dt.strftime(day_first)).to_parquet(folder / "tracker.parquet")
    return folder


RELATIONAL_MAPPING = """
kind: relational
source: {path: extract, date_format: "%d/%m/%Y"}
extract_date: 2024-12-31
tables:
  members:
    file: policyholders.csv
    columns:
      member_id: {column: pid}
      birth_date: {column: born}
      sex: {column: gender, codes: {"1": M, "2": F}}
      region: {column: area}
      enrollment_start: {column: start}
      enrollment_end: {column: end}
      family_history_diabetes: {column: fh_dm}
      family_history_hypertension: {column: fh_htn}
  applications:
    file: forms.csv
    columns:
      member_id: {column: pid}
      application_date: {column: applied}
      active_30min: {column: active_30min}
      daily_veg_fruit: {column: daily_veg_fruit}
      ever_bp_treatment: {column: ever_bp_treatment}
      ever_high_glucose: {column: ever_high_glucose}
      smoker: {column: smoker}
      family_history: {column: family_history}
      waist_cm: {column: waist_cm}
      height_cm: {column: height_cm}
      weight_kg: {column: weight_kg}
  consultations:
    file: visits.csv
    columns:
      consultation_id: {column: visit}
      member_id: {column: pid}
      date: {column: seen}
      channel: {column: setting}
      icd10_codes: {column: dx}
      atc_codes: {column: rx}
      weight_kg: {column: wt_lb, unit: lb}
      height_cm: {column: ht}
      waist_cm: {column: waist}
      sbp_mmhg: {column: sys}
      dbp_mmhg: {column: dia}
      smoking_status: {column: smoke}
  lab_results:
    file: labs.parquet
    columns:
      member_id: {column: pid}
      date: {column: drawn}
      test: {column: analyte, codes: {GLU: fasting_glucose, A1C: hba1c}}
      value: {column: result}
      unit: {column: units}
  wearable_daily:
    file: tracker.parquet
    columns:
      member_id: {column: pid}
      date: {column: day}
      steps: {column: step_count}
      resting_hr: {column: resting_hr}
      sleep_minutes: {column: sleep_minutes}
      active_minutes: {column: active_minutes}
      wear_minutes: {column: wear_minutes}
"""


def test_a_relational_extract_with_renamed_tables_and_columns_gives_the_same_features(own_data, tmp_path):
    _relational_extract(own_data.cohort, tmp_path / "extract")
    mapping = tmp_path / "relational.yaml"
    mapping.write_text(RELATIONAL_MAPPING)
    report = import_extract(load_mapping(mapping), mapping, tmp_path / "out", pepper=PEPPER)
    assert all(t.rejected == 0 and t.member_rejected == 0 for t in report.validation.tables.values())
    assert (tmp_path / "out" / EXTRACT_DIR / "mapping.yaml").exists()
    imported, _ = load_raw(tmp_path / "out", pepper=PEPPER)
    pairs = pd.DataFrame({"member_id": imported.members["member_id"], "index_date": pd.Timestamp("2021-01-01")})
    got = compute_features({n: getattr(imported, n) for n in RAW_TABLES}, pairs)
    want = _features_of_folder(own_data.cohort, pairs)
    assert len(got) == 300 and (got["member_id"].to_numpy() == want["member_id"].to_numpy()).all()
    for name in default_registry().names():
        same = np.isclose(got[name], want[name], rtol=1e-12, atol=1e-12, equal_nan=True)
        assert same.all(), f"{name}: {int((~same).sum())} members differ"


def test_an_age_column_stands_in_for_the_birth_date(tmp_path):
    csv = tmp_path / "rows.csv"
    pd.DataFrame([{**{k: v for k, v in GOOD.items() if k != "DOB"}, "AgeAtApp": 47}]).to_csv(csv, index=False)
    raw = yaml.safe_load(Path("experiments/mappings/example_flat.yaml").read_text())
    raw["source"]["path"] = str(csv)
    raw["tables"]["members"]["columns"]["birth_date"] = {"column": "AgeAtApp", "unit": "years"}
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(yaml.safe_dump(raw))
    import_extract(load_mapping(mapping), mapping, tmp_path / "out", pepper=PEPPER)
    tables, specs, _ = imported_tables(tmp_path / "out", PEPPER)
    row = compute_features(tables, pd.DataFrame({"member_id": ["A-1"], "index_date": [pd.Timestamp("2021-05-16")]}),
                           custom_registry(specs)).iloc[0]
    assert row["age_years"] == pytest.approx(47 + 1 / 365.25, abs=1 / 365.25)  # 47 at application, a day later

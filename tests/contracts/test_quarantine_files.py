"""The `_rejected/` files: every bad row findable by its source row and reasons, no personal data.

The same injections run on a parquet and on a csv delivery of the hand-made cohort
(tests/conftest.py): wearable row 1 breaks two ranges, wearable row 10 repeats row 4, member
M-1006 (members row 5) has an unknown region, lab row 2 has an HbA1c in g/L and lab row 4
belongs to an unknown member M-9999.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from chronorisk.data.contracts import TABLES, validate_folder

EXPECTED = {
    "members": [(5, "unknown_code:region")],
    "applications": [(5, "member_rejected")],
    "consultations": [(10, "member_rejected"), (11, "member_rejected")],
    "lab_results": [(2, "unknown_unit:hba1c"), (4, "unknown_member"), (10, "member_rejected"),
                    (11, "member_rejected")],
    "wearable_daily": [(1, "out_of_range:steps;out_of_range:resting_hr"), (10, "duplicate")],
}
RAW_IDS = [f"M-100{i}" for i in range(1, 7)] + ["M-9999"]


def _inject(frames: dict[str, pd.DataFrame]) -> None:
    frames["wearable_daily"].loc[1, ["steps", "resting_hr"]] = [-5, 400.0]
    frames["wearable_daily"] = pd.concat([frames["wearable_daily"], frames["wearable_daily"].iloc[[4]]],
                                         ignore_index=True)
    frames["members"].loc[5, "region"] = "atlantis"
    frames["lab_results"].loc[2, "unit"] = "g/L"
    frames["lab_results"].loc[4, "member_id"] = "M-9999"


@pytest.fixture(params=["parquet", "csv"])
def quarantined(request, cohort, tmp_path, write_folder, pepper):
    _inject(cohort)
    folder = write_folder(cohort, tmp_path / "raw", request.param)
    return folder, validate_folder(folder, pepper=pepper)


def _quarantine(folder: Path, table: str) -> pd.DataFrame:
    return pd.read_parquet(folder / "_rejected" / f"{table}.parquet")


@pytest.mark.parametrize("table", TABLES)
def test_quarantine_lists_each_rejected_row_with_its_source_row_and_reasons(quarantined, table):
    folder, _ = quarantined
    q = _quarantine(folder, table)
    assert list(zip(q["source_row"], q["reason"], strict=True)) == EXPECTED[table]


def test_every_row_read_is_accepted_rejected_or_member_rejected(quarantined):
    _, report = quarantined
    counts = {name: (t.read, t.accepted, t.rejected, t.member_rejected) for name, t in report.tables.items()}
    assert counts == {"members": (6, 5, 1, 0), "applications": (6, 5, 0, 1), "consultations": (12, 10, 0, 2),
                      "lab_results": (12, 8, 2, 2), "wearable_daily": (11, 9, 2, 0)}


def test_report_points_at_each_quarantine_file(quarantined):
    _, report = quarantined
    assert {name: t.quarantine for name, t in report.tables.items()} == {
        name: f"_rejected/{name}.parquet" for name in TABLES}


def test_quarantine_keeps_contract_columns_with_member_ref_instead_of_member_id(quarantined):
    folder, _ = quarantined
    assert list(_quarantine(folder, "members").columns) == [
        "member_ref", "birth_date", "sex", "region", "enrollment_start", "enrollment_end",
        "family_history_diabetes", "family_history_hypertension", "reason", "source_row"]


def test_member_ref_is_the_hmac_of_the_member_id_under_the_pepper(quarantined, pepper):
    folder, _ = quarantined
    expected = hmac.new(pepper, b"M-1006", hashlib.sha256).hexdigest()
    assert _quarantine(folder, "consultations")["member_ref"].tolist() == [expected, expected]


def test_quarantine_bytes_hold_no_raw_member_id_and_no_canary(quarantined, pepper):
    folder, _ = quarantined
    files = sorted((folder / "_rejected").glob("*.parquet"))
    blob = b"".join(p.read_bytes() for p in files)
    # the search can see plain values: the pseudonym of M-1006 is stored readably
    assert hmac.new(pepper, b"M-1006", hashlib.sha256).hexdigest().encode() in blob
    leaked = [s for s in [*RAW_IDS, "Zhang Wei", "13800138000"] if s.encode() in blob]
    assert leaked == []


def test_a_rerun_on_repaired_data_removes_the_stale_quarantine_files(cohort, tmp_path, write_folder, pepper):
    cohort["lab_results"].loc[2, "unit"] = "g/L"
    folder = write_folder(cohort, tmp_path / "raw")
    validate_folder(folder, pepper=pepper)
    cohort["lab_results"].loc[2, "unit"] = "%"
    write_folder(cohort, folder)
    validate_folder(folder, pepper=pepper)
    assert list((folder / "_rejected").glob("*")) == []


def test_clean_data_is_accepted_whole_and_quarantines_nothing(cohort, tmp_path, write_folder, pepper):
    folder = write_folder(cohort, tmp_path / "raw")
    report = validate_folder(folder, extract_date=date(2024, 12, 31), pepper=pepper)
    assert (report.clean, (folder / "_rejected").exists()) == (True, False)


def test_a_rejected_row_of_python_datetimes_is_quarantined_as_the_text_read(cohort, pepper):
    from chronorisk.data.contracts import validate_tables

    members = cohort["members"].copy()
    members["birth_date"] = pd.Series(list(pd.to_datetime(members["birth_date"]).dt.to_pydatetime()), dtype=object)
    members.loc[5, "region"] = "atlantis"
    _, rejected, _ = validate_tables({**cohort, "members": members}, extract_date=date(2024, 12, 31), pepper=pepper)
    row = rejected["members"]
    assert row["birth_date"].dtype == "str"  # as read, not a type a frame would infer
    assert row["birth_date"].tolist() == [str(members.loc[5, "birth_date"])]


def test_a_header_that_repeats_a_column_outside_the_contract_validates_on_its_first(cohort, pepper):
    from chronorisk.data.contracts import validate_tables

    members = cohort["members"].copy()
    members.loc[5, "region"] = "atlantis"
    noted = pd.concat([members, pd.DataFrame({"note": ["a"] * len(members)}),
                       pd.DataFrame({"note": ["b"] * len(members)})], axis=1)
    accepted, rejected, report = validate_tables({**cohort, "members": noted}, extract_date=date(2024, 12, 31),
                                                 pepper=pepper)
    assert report.tables["members"].read == len(members) == len(accepted["members"]) + len(rejected["members"])
    assert "note" not in rejected["members"].columns  # outside the contract: never quarantined

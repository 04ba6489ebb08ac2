"""Strict mode fails loudly on the first broken rule instead of quarantining, and writes nothing."""

from __future__ import annotations

import pytest

from chronorisk.data.contracts import ContractError, validate_folder


@pytest.fixture
def three_bad_hba1c(cohort, tmp_path, write_folder):
    # lab rows 2, 9 and 10 are HbA1c in %; 48 % is the classic mmol/mol value under the wrong unit
    cohort["lab_results"].loc[[2, 9, 10], "value"] = 48.0
    return write_folder(cohort, tmp_path / "raw")


def test_strict_mode_names_table_column_rule_and_count_in_the_message(three_bad_hba1c, pepper):
    with pytest.raises(ContractError) as err:
        validate_folder(three_bad_hba1c, strict=True, pepper=pepper)
    assert str(err.value) == "lab_results.value: 3 rows break out_of_range (hba1c 3-20 %)"


def test_strict_mode_error_carries_table_column_rule_and_count(three_bad_hba1c, pepper):
    with pytest.raises(ContractError) as err:
        validate_folder(three_bad_hba1c, strict=True, pepper=pepper)
    e = err.value
    assert (e.table, e.column, e.rule, e.count) == ("lab_results", "value", "out_of_range", 3)


def test_strict_mode_writes_no_quarantine(three_bad_hba1c, pepper):
    with pytest.raises(ContractError):
        validate_folder(three_bad_hba1c, strict=True, pepper=pepper)
    assert not (three_bad_hba1c / "_rejected").exists()


def test_strict_mode_reports_the_members_table_before_the_tables_that_depend_on_it(
        cohort, tmp_path, write_folder, pepper):
    cohort["members"].loc[0, "sex"] = "X"
    cohort["wearable_daily"].loc[0, "steps"] = -1
    folder = write_folder(cohort, tmp_path / "raw")
    with pytest.raises(ContractError, match=r"^members\.sex: 1 row breaks unknown_code"):
        validate_folder(folder, strict=True, pepper=pepper)


def test_strict_mode_on_clean_data_returns_a_clean_report(cohort, tmp_path, write_folder, pepper):
    report = validate_folder(write_folder(cohort, tmp_path / "raw"), strict=True, pepper=pepper)
    assert report.clean

"""Diagnosis and medication codes are checked against code lists, not only their shape.

ICD-10 against the WHO list (U99.9 is well formed but is no WHO code: U99 does not exist; the U
codes WHO has are U00-U49 and U82-U85); ATC by its level structure and its anatomical main group
(X is none of the 14). National extensions of ICD-10 (China's E11.900 for WHO's E11.9) are accepted
only where a mapping declares them, as the WHO code they refine. Row numbers refer to the hand-made
cohort of tests/conftest.py (consultations 0-11, all valid as given).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from chronorisk.data.contracts import CONTRACTS, ContractError, load_raw, validate_folder
from chronorisk.data.extract import import_extract
from chronorisk.data.mapping import load_mapping
from chronorisk.data.rejections import QUARANTINE_DIR


@pytest.mark.parametrize(("column", "codes", "rejected"), [
    ("icd10_codes", "U99.9", True),  # the pattern's shape, no WHO code
    ("icd10_codes", "E11.900", True),  # a national extension, not declared by any mapping here
    ("icd10_codes", "E11.9;U99.9", True),  # one unknown code in the list rejects the row
    ("icd10_codes", "E10-E14", True),  # a block is no code (refused by the pattern already)
    ("icd10_codes", "U07.1", False),  # a WHO U code (COVID-19, confirmed)
    ("icd10_codes", "E11", False),  # a category without its subdivision
    ("atc_codes", "X10BA02", True),  # level structure right, no anatomical group X
    ("atc_codes", "A10BA02;C09", False),  # a level-5 and a level-2 code
    ("atc_codes", "A10B", False),  # level 3
    ("atc_codes", "A10BA0", True),  # level 5 takes two digits
])
def test_codes_off_the_lists_are_quarantined_as_unknown_code(cohort, tmp_path, write_folder, pepper, column, codes,
                                                            rejected):
    cohort["consultations"].loc[3, column] = codes
    report = validate_folder(write_folder(cohort, tmp_path / "raw"), pepper=pepper)
    by_rule = report.tables["consultations"].by_rule
    if rejected:
        assert by_rule == {f"unknown_code:{column}": 1}
        quarantined = pd.read_parquet(tmp_path / "raw" / QUARANTINE_DIR / "consultations.parquet")
        assert quarantined["reason"].tolist() == [f"unknown_code:{column}"]
        assert quarantined["source_row"].tolist() == [3]
    else:
        assert by_rule == {} and report.tables["consultations"].accepted == 12


def test_strict_mode_names_table_column_rule_and_count_never_the_code(cohort, tmp_path, write_folder, pepper):
    cohort["consultations"].loc[[3, 7], "icd10_codes"] = ["U99.9", "U99.8;I10"]
    with pytest.raises(ContractError) as caught:
        validate_folder(write_folder(cohort, tmp_path / "raw"), pepper=pepper, strict=True)
    err = caught.value
    assert (err.table, err.column, err.rule, err.count) == ("consultations", "icd10_codes", "unknown_code", 2)
    assert "WHO ICD-10" in str(err)
    assert "U99" not in str(err)


MAPPING = """
kind: relational
source: {{path: extract}}
extract_date: 2024-12-31
tables:
  members:
    file: members.csv
    columns:
{members}
  consultations:
    file: consultations.csv
    columns:
{consultations}
"""


def _extract(cohort: dict[str, pd.DataFrame], folder: Path, national: bool) -> Path:
    """The hand cohort's members and consultations as an insurer's CSV extract under their contract names."""
    (folder / "extract").mkdir(parents=True)
    tables = {name: cohort[name][[c for c in cohort[name].columns if c in CONTRACTS[name].columns]]
              for name in ("members", "consultations")}  # the cohort's canary columns are not mapped
    lines = {}
    for name, frame in tables.items():
        frame.to_csv(folder / "extract" / f"{name}.csv", index=False)
        lines[name] = "\n".join(
            f"      {c}: {{column: {c}{', national_extension: true' if national and c == 'icd10_codes' else ''}}}"
            for c in frame.columns)
    mapping = folder / "mapping.yaml"
    mapping.write_text(MAPPING.format(**lines))
    return mapping


@pytest.mark.parametrize("national", [True, False], ids=["declared", "not-declared"])
def test_a_mapping_declaring_national_extensions_imports_them_as_the_who_code(cohort, tmp_path, pepper, national):
    cons = cohort["consultations"]
    cons.loc[2, "icd10_codes"] = "E11.900;I10"  # China's E11.900 refines WHO's E11.9
    cons.loc[4, "icd10_codes"] = "U99.900"  # extends U99.9, which is no WHO code
    cons.loc[5, "icd10_codes"] = "E11.90001"  # four more digits: more than an extension may add
    mapping = _extract(cohort, tmp_path / "in", national)
    report = import_extract(load_mapping(mapping), mapping, tmp_path / "out", pepper=pepper)
    table = report.validation.tables["consultations"]
    expected_rejected = [4, 5] if national else [2, 4, 5]
    assert table.by_rule == {"unknown_code:icd10_codes": len(expected_rejected)}
    quarantined = pd.read_parquet(tmp_path / "out" / QUARANTINE_DIR / "consultations.parquet")
    assert sorted(quarantined["source_row"].tolist()) == expected_rejected
    raw, _ = load_raw(tmp_path / "out", pepper=pepper)  # a later reader of the raw folder sees the same rows
    accepted = dict(zip(raw.consultations["consultation_id"], raw.consultations["icd10_codes"], strict=True))
    if national:
        assert accepted["C-0003"] == "E11.9;I10"
    else:
        assert "C-0003" not in accepted
    assert len(raw.consultations) == 12 - len(expected_rejected)


def test_national_extension_is_refused_on_a_column_other_than_icd10(cohort, tmp_path, pepper):
    mapping = _extract(cohort, tmp_path / "in", national=False)
    text = mapping.read_text().replace("atc_codes: {column: atc_codes}",
                                       "atc_codes: {column: atc_codes, national_extension: true}")
    mapping.write_text(text)
    with pytest.raises(ValueError, match="national_extension applies to icd10_codes only"):
        import_extract(load_mapping(mapping), mapping, tmp_path / "out", pepper=pepper)

"""One bad row per rule, injected into the hand-made cohort: each is counted under exactly its rule.

Row numbers refer to the cohort described in tests/conftest.py; every expected count below was
worked out from that description, not from the code's output.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pandas as pd
import pytest

from chronorisk.data.contracts import TABLES, validate_folder

Frames = dict[str, pd.DataFrame]


def put(table: str, row: int, **values: object) -> Callable[[Frames], None]:
    def inject(frames: Frames) -> None:
        for col, value in values.items():
            frames[table].loc[row, col] = value
    return inject


def add(table: str, copy_of: int, **values: object) -> Callable[[Frames], None]:
    def inject(frames: Frames) -> None:
        extra = frames[table].iloc[[copy_of]].copy()
        for col, value in values.items():
            extra[col] = value
        frames[table] = pd.concat([frames[table], extra], ignore_index=True)
    return inject


def text(table: str, column: str, row: int, value: str) -> Callable[[Frames], None]:
    """The column delivered as text (as a CSV-born parquet would be), one cell unreadable."""
    def inject(frames: Frames) -> None:
        col = frames[table][column].astype(object).map(lambda v: None if pd.isna(v) else str(v))
        col[row] = value
        frames[table][column] = col
    return inject


def nullable_bool(table: str, column: str, row: int) -> Callable[[Frames], None]:
    def inject(frames: Frames) -> None:
        frames[table][column] = frames[table][column].astype("boolean")
        frames[table].loc[row, column] = pd.NA
    return inject


# members M-1006 (row 5) has 1 application, 2 consultations, 2 labs and no wearable days;
# M-1005 (row 4) the same.
CASCADE = {"applications": (0, 1, {}), "consultations": (0, 2, {}), "lab_results": (0, 2, {})}

CASES = [
    pytest.param(add("wearable_daily", 0, member_id=None),
                 {"wearable_daily": (1, 0, {"null_key:member_id": 1})}, id="a missing member id is null_key"),
    pytest.param(text("lab_results", "date", 1, "2020-02-30"),
                 {"lab_results": (1, 0, {"invalid_date:date": 1})}, id="an impossible date is invalid_date"),
    pytest.param(put("consultations", 2, date=date(2025, 1, 1)),
                 {"consultations": (1, 0, {"future_date:date": 1})}, id="a date after the extract is future_date"),
    pytest.param(put("consultations", 0, date=date(1969, 1, 1)),
                 {"consultations": (1, 0, {"before_birth:date": 1})}, id="a visit before birth is before_birth"),
    pytest.param(put("lab_results", 2, unit="g/L"),
                 {"lab_results": (1, 0, {"unknown_unit:hba1c": 1})}, id="hba1c in g/L is unknown_unit"),
    pytest.param(put("lab_results", 2, value=48.0),
                 {"lab_results": (1, 0, {"out_of_range:hba1c": 1})}, id="48 mmol/mol labelled % is out_of_range"),
    pytest.param(put("wearable_daily", 0, steps=250_000),
                 {"wearable_daily": (1, 0, {"out_of_range:steps": 1})}, id="250000 steps is out_of_range"),
    pytest.param(put("consultations", 0, dbp_mmhg=125.0),
                 {"consultations": (1, 0, {"out_of_range:dbp_mmhg": 1})}, id="dbp above sbp is out_of_range"),
    pytest.param(text("wearable_daily", "resting_hr", 3, "sixty"),
                 {"wearable_daily": (1, 0, {"invalid_number:resting_hr": 1})}, id="text in a number is invalid_number"),
    pytest.param(nullable_bool("applications", "smoker", 3),
                 {"applications": (1, 0, {"null_required:smoker": 1})}, id="an unanswered question is null_required"),
    pytest.param(add("wearable_daily", 4),
                 {"wearable_daily": (1, 0, {"duplicate": 1})}, id="a repeated wearable day is duplicate"),
    pytest.param(add("consultations", 0, date=date(2019, 4, 4)),
                 {"consultations": (1, 0, {"duplicate": 1})}, id="a reused consultation id is duplicate"),
    pytest.param(put("consultations", 5, channel="telepathy"),
                 {"consultations": (1, 0, {"unknown_code:channel": 1})}, id="an unknown channel is unknown_code"),
    pytest.param(put("consultations", 3, icd10_codes="I10;high blood pressure"),
                 {"consultations": (1, 0, {"unknown_code:icd10_codes": 1})}, id="free-text diagnosis is unknown_code"),
    pytest.param(put("lab_results", 4, test="vitamin_d"),
                 {"lab_results": (1, 0, {"unknown_code:test": 1})}, id="an unknown test is unknown_code only"),
    pytest.param(put("lab_results", 4, member_id="M-9999"),
                 {"lab_results": (1, 0, {"unknown_member": 1})}, id="a lab of nobody is unknown_member"),
    pytest.param(put("members", 5, region="atlantis"),
                 {"members": (1, 0, {"unknown_code:region": 1}), **CASCADE},
                 id="a rejected member takes its rows to member_rejected"),
    pytest.param(put("members", 4, birth_date=date(2003, 1, 1)),
                 {"members": (1, 0, {"out_of_range:age_at_enrollment": 1}), **CASCADE},
                 id="enrolled at 15 is out_of_range and cascades"),
    pytest.param(put("wearable_daily", 1, steps=-5, resting_hr=400.0),
                 {"wearable_daily": (1, 0, {"out_of_range:steps": 1, "out_of_range:resting_hr": 1})},
                 id="a row breaking two rules is rejected once with both"),
]


@pytest.mark.parametrize(("inject", "expected"), CASES)
def test_each_injected_bad_row_is_counted_under_exactly_its_rule(cohort, tmp_path, write_folder, pepper,
                                                                inject, expected):
    inject(cohort)
    report = validate_folder(write_folder(cohort, tmp_path / "raw"), pepper=pepper)
    got = {name: (t.rejected, t.member_rejected, t.by_rule) for name, t in report.tables.items()}
    assert got == {name: expected.get(name, (0, 0, {})) for name in TABLES}

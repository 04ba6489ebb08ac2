"""Bad rows injected into a generated cohort are quarantined exactly as injected, rule by rule.

Uses the synthetic generator (300 members, seed 3): the clean cohort must validate with zero
rejections, and a copy with a known number of bad rows per rule in several tables must report
exactly those numbers. Injections avoid the three rejected members, whose rows cascade.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chronorisk.data.contracts import TABLES, validate_folder

PROFILE = Path(__file__).resolve().parents[2] / "experiments" / "profiles" / "default.yaml"
PEPPER = b"synthetic-test-pepper"


@pytest.fixture(scope="module")
def clean_cohort(tmp_path_factory) -> Path:
    from chronorisk.synthetic.cohort import load_profile, synthesize

    out = tmp_path_factory.mktemp("synthetic") / "raw"
    synthesize(members=300, seed=3, out_dir=out, profile=load_profile(PROFILE), workers=1,
               file_format="parquet", progress=False)
    return out


def test_the_generated_cohort_validates_with_zero_rejections(clean_cohort, tmp_path):
    folder = shutil.copytree(clean_cohort, tmp_path / "raw")
    report = validate_folder(folder, pepper=PEPPER)
    assert {name: (t.rejected, t.member_rejected) for name, t in report.tables.items()} == {
        name: (0, 0) for name in TABLES}


class Injector:
    """Picks rows to spoil without ever picking the same row twice or a row of a cascading member."""

    def __init__(self, frames: dict[str, pd.DataFrame], spared: set[str], seed: int = 0) -> None:
        self.frames, self.rng = frames, np.random.default_rng(seed)
        self.free = {name: [int(i) for i in self.rng.permutation(np.flatnonzero(
            ~f["member_id"].isin(spared).to_numpy()))] for name, f in frames.items()}

    def rows(self, table: str, n: int, where: pd.Series | None = None) -> list[int]:
        ok = set(range(len(self.frames[table]))) if where is None else set(np.flatnonzero(where.to_numpy()))
        picked = [i for i in self.free[table] if i in ok][:n]
        assert len(picked) == n, f"not enough rows left in {table}"
        self.free[table] = [i for i in self.free[table] if i not in picked]
        return picked

    def set(self, table: str, n: int, where: pd.Series | None = None, **values: object) -> None:
        for i, row in enumerate(self.rows(table, n, where)):
            for col, value in values.items():
                self.frames[table].at[row, col] = value(i) if callable(value) else value

    def append_copies(self, table: str, n: int) -> None:
        copies = self.frames[table].iloc[self.rows(table, n)]
        self.frames[table] = pd.concat([self.frames[table], copies], ignore_index=True)


def test_injected_bad_rows_are_reported_exactly_as_injected(clean_cohort, tmp_path):
    folder = shutil.copytree(clean_cohort, tmp_path / "raw")
    frames = {name: pd.read_parquet(folder / f"{name}.parquet") for name in TABLES}
    m = frames["members"]
    # three members with consultations are rejected: two for their region, one for enrolling at 6-8
    lost = sorted(set(frames["consultations"]["member_id"]))[:3]
    m.loc[m["member_id"].isin(lost[:2]), "region"] = "atlantis"
    m.loc[m["member_id"] == lost[2], "birth_date"] = date(2010, 1, 1)  # enrolment is in 2016-2018
    spoil = Injector(frames, spared=set(lost))
    spoil.set("applications", 2, waist_cm=500.0)
    spoil.set("consultations", 3, icd10_codes="diabetes")
    spoil.set("consultations", 2, date=date(1900, 1, 1))
    spoil.set("consultations", 1, sbp_mmhg=400.0, channel="fax")  # one row, two rules
    spoil.append_copies("consultations", 2)
    labs = frames["lab_results"]
    spoil.set("lab_results", 3, labs["test"] == "hba1c", unit="g/L")
    spoil.set("lab_results", 2, labs["test"] == "egfr", value=500.0)
    spoil.set("lab_results", 4, member_id=lambda i: f"X{i}")
    spoil.set("wearable_daily", 5, steps=200_000)
    spoil.set("wearable_daily", 3, date=lambda i: date(2025, 1, 1) + timedelta(days=i))
    spoil.set("wearable_daily", 2, member_id=None)
    spoil.append_copies("wearable_daily", 4)
    for name in TABLES:
        frames[name].to_parquet(folder / f"{name}.parquet", index=False)

    cascade = {name: int(frames[name]["member_id"].isin(lost).sum()) for name in TABLES[1:]}
    report = validate_folder(folder, pepper=PEPPER)
    got = {name: (t.rejected, t.member_rejected, t.by_rule) for name, t in report.tables.items()}
    assert got == {
        "members": (3, 0, {"unknown_code:region": 2, "out_of_range:age_at_enrollment": 1}),
        "applications": (2, cascade["applications"], {"out_of_range:waist_cm": 2}),
        "consultations": (8, cascade["consultations"], {
            "unknown_code:icd10_codes": 3, "before_birth:date": 2, "out_of_range:sbp_mmhg": 1,
            "unknown_code:channel": 1, "duplicate": 2}),
        "lab_results": (9, cascade["lab_results"], {
            "unknown_unit:hba1c": 3, "out_of_range:egfr": 2, "unknown_member": 4}),
        "wearable_daily": (14, cascade["wearable_daily"], {
            "out_of_range:steps": 5, "future_date:date": 3, "null_key:member_id": 2, "duplicate": 4}),
    }

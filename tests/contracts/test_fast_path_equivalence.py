"""The two ways of running a table's value rules judge every row alike.

validate_tables runs them as numpy masks on tables of up to `quarantine.SMALL_FRAME_ROWS` rows
(the online service's one applicant) and through pandera on larger ones. These tests force one
way, then the other, on the same input and ask for the same accepted frames, quarantine frames and
report: on the hand-made cohort (tests/conftest.py) with each bad row of
test_bad_rows_are_counted_per_rule and test_quarantine_files injected, delivered as frames and as
CSV text, plus values at the edges of the rules; and on a 300-member generated cohort with the bad
rows of test_injected_rows_on_synthetic_cohort.
"""

from __future__ import annotations

import sys
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from test_bad_rows_are_counted_per_rule import CASES, Frames, add
from test_injected_rows_on_synthetic_cohort import PROFILE, Injector
from test_quarantine_files import _inject as quarantine_injections

from chronorisk.data import quarantine
from chronorisk.data.contracts import read_folder, validate_tables

MASKS, PANDERA = sys.maxsize, -1  # SMALL_FRAME_ROWS forcing every table one way
EXTRACT = date(2024, 12, 31)  # the hand-made cohort's extract date


def _rule_edges(frames: Frames) -> None:
    """Values where the two ways could part: missing values under value rules, a row with nothing in it."""
    members = frames["members"]
    frames["members"] = pd.concat([members, pd.DataFrame([[None] * members.shape[1]], columns=members.columns)],
                                  ignore_index=True)
    c = frames["consultations"]
    c.loc[0, ["icd10_codes", "atc_codes"]] = ["I10\n", "E11.9;"]
    c.loc[1, "channel"] = None
    c.loc[2, ["sbp_mmhg", "dbp_mmhg"]] = [np.nan, 300.0]
    c.loc[3, "smoking_status"] = "sometimes"
    labs = frames["lab_results"]
    labs.loc[0, "value"] = np.nan
    labs.loc[1, ["test", "unit"]] = [None, None]
    labs.loc[2, "date"] = None
    w = frames["wearable_daily"]
    w.loc[0, ["steps", "resting_hr"]] = [pd.NA, 400.0]
    w.loc[1, "date"] = None


INJECTIONS = [*(pytest.param(case.values[0], id=case.id) for case in CASES),  # the injection, not its counts
              pytest.param(quarantine_injections, id="the bad rows of the quarantine-file tests"),
              pytest.param(_rule_edges, id="missing values under value rules and an empty row"),
              pytest.param(add("consultations", 0, member_id="   "), id="a blank member id")]


def _validate(frames: Frames, monkeypatch: pytest.MonkeyPatch, small_frame_rows: int, pepper: bytes) -> tuple:
    monkeypatch.setattr(quarantine, "SMALL_FRAME_ROWS", small_frame_rows)
    return validate_tables({name: frame.copy() for name, frame in frames.items()}, extract_date=EXTRACT,
                           pepper=pepper)


def _assert_identical(one: tuple, other: tuple) -> None:
    for part in (0, 1):  # accepted, then quarantined frames
        assert list(one[part]) == list(other[part])
        for table in one[part]:
            pd.testing.assert_frame_equal(one[part][table], other[part][table], check_exact=True, obj=table)
    assert one[2] == other[2]


@pytest.mark.parametrize("delivery", ["frames", "csv"])
@pytest.mark.parametrize("inject", INJECTIONS)
def test_masks_and_pandera_judge_the_hand_made_cohort_with_each_bad_row_alike(
        cohort, write_folder, inject, delivery, monkeypatch, tmp_path, pepper):
    frames = cohort
    inject(frames)
    if delivery == "csv":
        frames, _ = read_folder(write_folder(frames, tmp_path / "raw", "csv"))
    _assert_identical(_validate(frames, monkeypatch, MASKS, pepper), _validate(frames, monkeypatch, PANDERA, pepper))


@pytest.fixture(scope="module")
def spoilt_cohort(tmp_path_factory) -> Frames:
    """The 300-member cohort of test_injected_rows_on_synthetic_cohort, spoilt the same way."""
    from chronorisk.synthetic.cohort import load_profile, synthesize

    out = tmp_path_factory.mktemp("synthetic") / "raw"
    synthesize(members=300, seed=3, out_dir=out, profile=load_profile(PROFILE), workers=1,
               file_format="parquet", progress=False)
    frames, _ = read_folder(out)
    m = frames["members"]
    lost = sorted(set(frames["consultations"]["member_id"]))[:3]
    m.loc[m["member_id"].isin(lost[:2]), "region"] = "atlantis"
    m.loc[m["member_id"] == lost[2], "birth_date"] = pd.Timestamp(2010, 1, 1)
    spoil = Injector(frames, spared=set(lost))
    spoil.set("applications", 2, waist_cm=500.0)
    spoil.set("consultations", 3, icd10_codes="diabetes")
    spoil.set("consultations", 2, date=pd.Timestamp(1900, 1, 1))
    spoil.set("consultations", 1, sbp_mmhg=400.0, channel="fax")
    spoil.append_copies("consultations", 2)
    labs = frames["lab_results"]
    spoil.set("lab_results", 3, labs["test"] == "hba1c", unit="g/L")
    spoil.set("lab_results", 2, labs["test"] == "egfr", value=500.0)
    spoil.set("lab_results", 4, member_id=lambda i: f"X{i}")
    spoil.set("wearable_daily", 5, steps=200_000)
    spoil.set("wearable_daily", 3, date=lambda i: pd.Timestamp(2025, 1, 1) + timedelta(days=i))
    spoil.set("wearable_daily", 2, member_id=None)
    spoil.append_copies("wearable_daily", 4)
    return frames


@pytest.mark.parametrize("small_frame_rows", [PANDERA, quarantine.SMALL_FRAME_ROWS],
                         ids=["pandera everywhere", "the default threshold"])
def test_masks_and_pandera_judge_the_spoilt_generated_cohort_alike(spoilt_cohort, small_frame_rows, monkeypatch,
                                                                  pepper):
    _assert_identical(_validate(spoilt_cohort, monkeypatch, MASKS, pepper),
                      _validate(spoilt_cohort, monkeypatch, small_frame_rows, pepper))


def test_tables_up_to_the_threshold_get_masks_and_larger_ones_pandera(cohort, monkeypatch, pepper):
    used: dict[str, list[str]] = {"masks": [], "pandera": []}
    masks, schema = quarantine._mask_failures, quarantine._schema_failures

    def spy_masks(c, *args):
        used["masks"].append(c.name)
        return masks(c, *args)

    def spy_schema(c, *args):
        used["pandera"].append(c.name)
        return schema(c, *args)

    monkeypatch.setattr(quarantine, "_mask_failures", spy_masks)
    monkeypatch.setattr(quarantine, "_schema_failures", spy_schema)
    # 6 members and applications, 10 wearable days, 12 consultations and lab results
    _validate(cohort, monkeypatch, 10, pepper)
    assert used == {"masks": ["members", "applications", "wearable_daily"],
                    "pandera": ["consultations", "lab_results"]}


def test_the_default_threshold_lies_between_one_applicant_and_a_cohort(cohort, spoilt_cohort):
    # so that "the default threshold" above runs both ways in one validation
    assert max(map(len, cohort.values())) <= quarantine.SMALL_FRAME_ROWS < len(spoilt_cohort["wearable_daily"])

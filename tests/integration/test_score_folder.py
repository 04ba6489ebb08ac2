"""`chronorisk score --data` in one pass (serving/batch.py score_folder): each table read once, up to
the index date, the features, eligibility and refusals of a chunk taken from the same validated rows.

The output is checked against references computed apart from it, on the session champion's cohort
with two broken rows written into it: the features against `build_features_at` (the feature build
the two-pass scorer read back), the probabilities against the model on those features, `eligible`
against the rule worked out by hand in pandas from the whole raw tables (enrolled for the product's
365 days before the date, no diabetes code, drug or lab result on record before it, however old),
and the refusal listing against the contract reasons of the feature build.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from service_fixtures import PEPPER

from chronorisk.data.contracts import extract_date_of, load_raw
from chronorisk.data.pseudonym import member_refs
from chronorisk.model.bundle import LoadedModel, probabilities
from chronorisk.settings import Settings
from features.runners import CONTRACT_REASONS, build_features_at
from serving.batch import load_served, refused_path, score_folder

INDEX_DATE = date(2024, 1, 1)  # inside the extract: the records after it must not count
T = pd.Timestamp(INDEX_DATE)


@pytest.fixture(scope="module")
def folder(model_store, tmp_path_factory) -> tuple[Path, list[str]]:
    """The champion's cohort with one member's consultation before the date and another's after it broken
    (diastolic above systolic): the first is refused, the second's broken row is beyond the read."""
    root = tmp_path_factory.mktemp("score-folder") / "cohort"
    shutil.copytree(model_store.cohort, root)
    path = root / "consultations.parquet"
    cons = pd.read_parquet(path)
    when = pd.to_datetime(cons["date"])
    before = cons.index[(when < T - pd.Timedelta(days=30)) & cons["sbp_mmhg"].notna()][5]
    after = cons.index[(when >= T) & cons["sbp_mmhg"].notna() & (cons["member_id"] != cons.at[before, "member_id"])][5]
    for i in (before, after):
        cons.loc[i, "dbp_mmhg"] = cons.loc[i, "sbp_mmhg"] + 5
    cons.to_parquet(path, index=False)
    return root, [str(cons.at[before, "member_id"]), str(cons.at[after, "member_id"])]


@pytest.fixture(scope="module")
def scored(model_store, folder, tmp_path_factory) -> tuple[dict[int, tuple], LoadedModel]:
    settings = Settings(MLFLOW_TRACKING_URI=model_store.tracking_uri, id_pepper=PEPPER)
    out = tmp_path_factory.mktemp("scored")
    runs = {}
    for chunk in (20_000, 700):  # one chunk, and several streamed one after another
        counts = score_folder(settings, "diabetes", "champion", folder[0], INDEX_DATE, out / f"s{chunk}.parquet",
                              chunk_members=chunk)
        runs[chunk] = (counts, pd.read_parquet(out / f"s{chunk}.parquet"),
                       pd.read_parquet(refused_path(out / f"s{chunk}.parquet")))
    return runs, load_served(settings, "diabetes", "champion").model


def _hand_eligible(cohort: Path) -> pd.Series:
    raw, _ = load_raw(cohort, extract_date=extract_date_of(cohort), pepper=PEPPER.encode())
    m = raw.members.set_index("member_id")
    history = (m["enrollment_start"] <= T - pd.Timedelta(days=365)) & (
        m["enrollment_end"].isna() | (m["enrollment_end"] >= T))
    cons = raw.consultations[pd.to_datetime(raw.consultations["date"]) < T]
    codes = cons["icd10_codes"].fillna("").str.split(";").map(lambda cs: any(c.startswith(("E11", "E12", "E13", "E14"))
                                                                             for c in cs))
    drugs = cons["atc_codes"].fillna("").str.split(";").map(lambda cs: any(c.startswith("A10") for c in cs))
    labs = raw.lab_results[pd.to_datetime(raw.lab_results["date"]) < T]
    high = (((labs["test"] == "hba1c") & (labs["value"] >= 6.5))
            | ((labs["test"] == "fasting_glucose") & (labs["value"] >= 7.0))
            | ((labs["test"] == "ogtt_2h_glucose") & (labs["value"] >= 11.1)))
    prevalent = set(cons.loc[codes | drugs, "member_id"].astype(str)) | set(labs.loc[high, "member_id"].astype(str))
    ids = m.index.astype(str)
    eligible = pd.Series(history.to_numpy(dtype=bool) & ~np.isin(ids, list(prevalent)), index=ids)
    old = set(cons.loc[(codes | drugs) & (pd.to_datetime(cons["date"]) < T - pd.Timedelta(days=3 * 365)),
                       "member_id"].astype(str))
    assert old & set(ids[history.to_numpy(dtype=bool)]), "no enrolled member with an event years before the date"
    return eligible


def test_one_pass_equals_the_feature_build_the_model_and_the_rule_worked_out_by_hand(scored, folder, tmp_path):
    cohort, (broken_before, broken_after) = folder
    features_path = tmp_path / "features.parquet"
    build_features_at(cohort, INDEX_DATE, features_path, extract_date=extract_date_of(cohort), pepper=PEPPER.encode(),
                      contract_reasons=True, progress=False)
    built = pd.read_parquet(features_path)
    reasons = built.pop(CONTRACT_REASONS)
    refused = (reasons != "").to_numpy()
    assert built.loc[refused, "member_id"].astype(str).tolist() == [broken_before]
    expected = built.loc[~refused].reset_index(drop=True)
    runs, model = scored
    want_p = probabilities(model, expected)
    hand = _hand_eligible(cohort)
    for counts, frame, listed in runs.values():
        assert counts == {"members": len(hand), "scored": len(expected), "refused": 1}
        assert list(frame.columns) == [*expected.columns, "probability", "risk_class", "model_version", "eligible"]
        pd.testing.assert_frame_equal(frame[list(expected.columns)], expected, check_exact=True)
        np.testing.assert_array_equal(frame["probability"].to_numpy(), want_p)
        assert frame["eligible"].dtype == bool
        np.testing.assert_array_equal(frame["eligible"].to_numpy(), hand.loc[frame["member_id"].astype(str)].to_numpy())
        assert broken_after in set(frame["member_id"].astype(str))  # its broken row lies after the date
        assert listed["member_ref"].tolist() == member_refs(pd.Series([broken_before]), PEPPER.encode()).tolist()
        assert listed["reasons"].tolist() == reasons[refused].tolist()
        assert listed["index_date"].tolist() == [T]
    (_, f1, l1), (_, f2, l2) = runs.values()
    pd.testing.assert_frame_equal(f1, f2, check_exact=True)
    pd.testing.assert_frame_equal(l1, l2, check_exact=True)

"""Runners change how members are grouped, never the result: chunked, Dask and whole-cohort agree."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from typer.testing import CliRunner

from chronorisk.cli import app
from chronorisk.model.product import load_product
from features.registry import default_registry
from training.snapshot import SnapshotChunk, build_snapshot, build_snapshot_dask, read_snapshot, snapshot_meta

EXTRACT = date(2024, 12, 31)
PEPPER = b"test-pepper"


@pytest.fixture(scope="module")
def spec():
    return load_product("diabetes")


@pytest.fixture(scope="module")
def chunked(feature_cohort, spec, tmp_path_factory):
    out = tmp_path_factory.mktemp("snap") / "chunked.parquet"
    totals = build_snapshot(feature_cohort, spec, out, extract_date=EXTRACT, pepper=PEPPER, chunk_members=97,
                            progress=False)
    return read_snapshot(out), totals


def test_the_chunked_snapshot_equals_the_whole_cohort_in_one_piece(chunked, accepted_tables, spec):
    whole, _ = SnapshotChunk(spec, default_registry(), EXTRACT)(accepted_tables)
    pd.testing.assert_frame_equal(chunked[0], whole, check_exact=True)


def test_the_snapshot_does_not_depend_on_the_chunk_size(chunked, feature_cohort, spec, tmp_path):
    out = tmp_path / "big-chunks.parquet"
    build_snapshot(feature_cohort, spec, out, extract_date=EXTRACT, pepper=PEPPER, chunk_members=400, progress=False)
    pd.testing.assert_frame_equal(read_snapshot(out), chunked[0], check_exact=True)


def test_the_dask_runner_equals_the_chunked_runner(chunked, feature_cohort, spec, tmp_path):
    out = tmp_path / "dask.parquet"
    totals = build_snapshot_dask(feature_cohort, spec, out, extract_date=EXTRACT, pepper=PEPPER, chunk_members=150,
                                 workers=2)
    pd.testing.assert_frame_equal(read_snapshot(out), chunked[0], check_exact=True)
    assert totals.counts == chunked[1].counts
    assert totals.read == chunked[1].read


def test_label_counts_reconcile_with_the_rows_written(chunked):
    frame, totals = chunked
    c = totals.counts
    dropped = (c["not_enrolled"] + c["short_history"] + c["prevalent"] + c["lost_to_follow_up"] + c["beyond_extract"]
               + c["unused_test_member_dates"])
    assert c["candidates"] == dropped + c["rows"]
    assert c["rows"] == len(frame)
    assert c["positives"] == int(frame["label"].sum()) > 0
    assert c["censored"] == int((~frame["complete"]).sum()) > 0  # kept, not dropped
    assert set(frame["split"]) == {"train", "validation", "test", "test_censored"}


def test_contract_counts_reconcile_for_every_table(chunked):
    totals = chunked[1]
    for table, read in totals.read.items():
        assert read == totals.accepted[table] + totals.rejected[table] + totals.member_rejected[table], table


def test_the_cli_builds_a_snapshot_that_names_its_product_and_features(feature_cohort, tmp_path):
    out = tmp_path / "cli.parquet"
    result = CliRunner().invoke(app, ["features", "build", "--product", "diabetes", "--data", str(feature_cohort),
                                      "--out", str(out), "--chunk-members", "150"])
    assert result.exit_code == 0, result.output
    assert "positives" in result.output
    meta = snapshot_meta(out)
    assert meta["product"] == "diabetes"
    assert meta["features"] == default_registry().names()


def test_an_unknown_product_names_the_known_ones(feature_cohort, tmp_path):
    result = CliRunner().invoke(app, ["features", "build", "--product", "diabetis", "--data", str(feature_cohort),
                                      "--out", str(tmp_path / "x.parquet")])
    assert result.exit_code != 0
    assert "diabetes" in str(result.exception) and "hypertension" in str(result.exception)


def test_features_at_one_date_equal_the_one_function_on_the_whole_cohort(feature_cohort, accepted_tables, tmp_path):
    from features.build import compute_features
    from features.runners import build_features_at

    out = tmp_path / "at.parquet"
    totals = build_features_at(feature_cohort, date(2022, 7, 1), out, extract_date=EXTRACT, pepper=PEPPER,
                               chunk_members=130, progress=False)
    members = accepted_tables["members"]
    t = pd.Timestamp("2022-07-01")
    end = members["enrollment_end"]
    enrolled = (members["enrollment_start"] <= t) & (end.isna() | (end >= t))
    pairs = pd.DataFrame({"member_id": members.loc[enrolled, "member_id"], "index_date": t})
    expected = compute_features(accepted_tables, pairs).sort_values("member_id", ignore_index=True)
    got = read_snapshot(out)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert totals.counts["rows"] == len(expected) == totals.counts["enrolled"]

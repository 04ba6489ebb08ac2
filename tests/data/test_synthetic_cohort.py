"""The synthetic cohort: reproducible bytes, records that respect time, and the published targets."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chronorisk.synthetic.cohort import RAW_TABLES, load_profile, synthesize
from chronorisk.synthetic.calibration import calibration_checks, read_cohort_for_calibration

DEFAULT_PROFILE = Path("experiments/profiles/default.yaml")


def _sha(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def profile():
    return load_profile(DEFAULT_PROFILE)


@pytest.fixture(scope="session")
def calibration_cohort(tmp_path_factory, profile) -> Path:
    """The one large cohort of the suite: 50,000 members, as epidemiology.md asks."""
    out = tmp_path_factory.mktemp("cohort50k")
    synthesize(members=50_000, seed=2024, out_dir=out, profile=profile, workers=2)
    return out


@pytest.fixture(scope="session")
def small_cohort(tmp_path_factory, profile) -> Path:
    out = tmp_path_factory.mktemp("cohort2k")
    synthesize(members=2_500, seed=3, out_dir=out, profile=profile, workers=1)
    return out


def test_same_seed_gives_the_same_bytes_whatever_the_number_of_workers(small_cohort, tmp_path, profile):
    again = tmp_path / "again"
    synthesize(members=2_500, seed=3, out_dir=again, profile=profile, workers=2)
    assert _sha(again) == _sha(small_cohort)


def test_a_different_seed_gives_different_members(small_cohort, tmp_path, profile):
    other = tmp_path / "other"
    synthesize(members=2_500, seed=4, out_dir=other, profile=profile, workers=1)
    assert _sha(other)["members.parquet"] != _sha(small_cohort)["members.parquet"]


def test_the_first_members_do_not_depend_on_the_cohort_size(small_cohort, tmp_path, profile):
    smaller = tmp_path / "smaller"
    synthesize(members=1_000, seed=3, out_dir=smaller, profile=profile, workers=1)
    big = pd.read_parquet(small_cohort / "members.parquet").head(1_000)
    pd.testing.assert_frame_equal(pd.read_parquet(smaller / "members.parquet"), big)


def test_every_raw_table_and_the_truth_are_written(small_cohort):
    for table in RAW_TABLES:
        assert (small_cohort / f"{table}.parquet").exists(), table
    assert (small_cohort / "_truth" / "members.parquet").exists()
    assert (small_cohort / "_truth" / "yearly.parquet").exists()
    assert (small_cohort / "_manifest.json").exists()


def test_records_lie_between_enrolment_and_the_end_of_membership(small_cohort):
    members = pd.read_parquet(small_cohort / "members.parquet").set_index("member_id")
    extract_end = pd.Timestamp("2024-12-31")
    for table in ("consultations", "lab_results", "wearable_daily"):
        frame = pd.read_parquet(small_cohort / f"{table}.parquet", columns=["member_id", "date"])
        start = pd.to_datetime(frame["member_id"].map(members["enrollment_start"]))
        end = pd.to_datetime(frame["member_id"].map(members["enrollment_end"])).fillna(extract_end)
        dates = pd.to_datetime(frame["date"])
        assert (dates >= start).all(), table
        assert (dates <= end).all(), table
        assert (dates <= extract_end).all(), table


def test_wearable_records_start_in_2019_or_later(small_cohort):
    wear = pd.read_parquet(small_cohort / "wearable_daily.parquet", columns=["date"])
    assert pd.to_datetime(wear["date"]).min() >= pd.Timestamp("2019-01-01")


def test_lab_units_are_mixed_as_real_labs_report_them(small_cohort):
    labs = pd.read_parquet(small_cohort / "lab_results.parquet")
    units = labs.groupby("test")["unit"].unique().to_dict()
    assert set(units["hba1c"]) == {"%", "mmol/mol"}
    assert set(units["fasting_glucose"]) == {"mmol/L", "mg/dL"}


def test_diagnoses_are_recorded_after_onset_not_at_it(calibration_cohort):
    truth = pd.read_parquet(calibration_cohort / "_truth" / "members.parquet")
    incident = truth[~truth["diabetes_prevalent_at_enrolment"] & truth["diabetes_first_record"].notna()
                     & truth["diabetes_onset"].notna()]
    delay = (pd.to_datetime(incident["diabetes_first_record"]) - pd.to_datetime(incident["diabetes_onset"])).dt.days
    assert (delay >= 0).all()
    assert (delay > 0).mean() > 0.95


def test_mean_true_risk_matches_the_share_that_truly_develops_diabetes(calibration_cohort):
    """True risk is a probability of onset from the hazard: on average it equals the realised share."""
    yearly = pd.read_parquet(calibration_cohort / "_truth" / "yearly.parquet")
    truth = pd.read_parquet(calibration_cohort / "_truth" / "members.parquet")
    at = yearly[(pd.to_datetime(yearly["date"]) == pd.Timestamp("2020-01-01")) & ~yearly["prevalent_diabetes"]]
    onset = pd.to_datetime(at["member_id"].map(truth.set_index("member_id")["diabetes_onset"]))
    realised = ((onset >= pd.Timestamp("2020-01-01")) & (onset < pd.Timestamp("2023-01-01"))).mean()
    expected = at["true_risk_diabetes_3y"].mean()
    # 3-year risk of ~2.7 % over ~30,000 members: a binomial SD of ~0.1 percentage point.
    assert abs(realised - expected) < 0.004


def test_the_50k_cohort_meets_every_published_target(calibration_cohort):
    checks = calibration_checks(**read_cohort_for_calibration(calibration_cohort))
    failed = [f"{c.name}: {c.value:.4f} not in [{c.low}, {c.high}]" for c in checks if not c.passed]
    assert not failed, "\n".join(failed)
    assert len(checks) >= 30


def test_an_older_less_active_profile_shifts_the_population(tmp_path, profile):
    shifted = load_profile(Path("experiments/profiles/older_less_active.yaml"))
    a, b = tmp_path / "default", tmp_path / "shifted"
    synthesize(members=3_000, seed=9, out_dir=a, profile=profile)
    synthesize(members=3_000, seed=9, out_dir=b, profile=shifted)
    age = {d: pd.read_parquet(d / "_truth" / "members.parquet")["age_at_enrolment"].mean() for d in (a, b)}
    steps = {d: pd.read_parquet(d / "wearable_daily.parquet", columns=["steps"])["steps"].median() for d in (a, b)}
    assert age[b] > age[a] + 5
    assert steps[b] < steps[a] * 0.85


def test_a_profile_with_a_misspelt_key_is_refused_naming_it(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: " + str(DEFAULT_PROFILE.resolve()) + "\nwearable_uptak: 0.5\n")
    with pytest.raises(ValueError, match="wearable_uptak"):
        load_profile(bad)


def test_csv_output_holds_the_same_members_as_parquet(small_cohort, tmp_path, profile):
    out = tmp_path / "csv"
    synthesize(members=2_500, seed=3, out_dir=out, profile=profile, file_format="csv")
    csv = pd.read_csv(out / "members.csv", dtype=str)
    parquet = pd.read_parquet(small_cohort / "members.parquet")
    assert csv["member_id"].tolist() == parquet["member_id"].tolist()
    assert np.array_equal(pd.to_datetime(csv["birth_date"]).to_numpy(), pd.to_datetime(parquet["birth_date"]).to_numpy())


def test_the_clean_50k_cohort_breaks_no_contract(calibration_cohort):
    from chronorisk.data.contracts import validate_folder

    report = validate_folder(calibration_cohort, pepper=b"calibration-test")
    assert {name: t.rejected + t.member_rejected for name, t in report.tables.items()} == dict.fromkeys(
        report.tables, 0)

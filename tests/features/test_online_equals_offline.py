"""Training/serving skew is impossible by construction: one applicant's features equal the batch's."""

from __future__ import annotations

from datetime import date

import pandas as pd

from chronorisk.data.contracts import validate_tables
from features.build import compute_features

EXTRACT = date(2024, 12, 31)
PEPPER = b"test-pepper"


def _one_member(frames, member: str) -> dict[str, pd.DataFrame]:
    """One applicant's raw records, shuffled as a client might send them."""
    return {name: frame[frame["member_id"] == member].sample(frac=1.0, random_state=1).reset_index(drop=True)
            for name, frame in frames.items()}


def test_features_from_one_applicants_records_equal_the_batch_features(feature_cohort, accepted_tables):
    from chronorisk.data.contracts import read_folder

    raw, _ = read_folder(feature_cohort)
    members = accepted_tables["members"]["member_id"].sample(25, random_state=7).tolist()
    dates = [pd.Timestamp(d) for d in ("2019-01-01", "2020-07-15", "2021-01-01", "2023-03-31")]
    pairs = pd.DataFrame([(m, d) for m in members for d in dates], columns=["member_id", "index_date"])
    batch = compute_features(accepted_tables, pairs).set_index(["member_id", "index_date"])
    for member in members:
        accepted, _, _ = validate_tables(_one_member(raw, member), extract_date=EXTRACT, pepper=PEPPER)
        online = compute_features(accepted, pairs[pairs["member_id"] == member]).set_index(
            ["member_id", "index_date"])
        pd.testing.assert_frame_equal(online, batch.loc[online.index], check_exact=True)


def test_the_comparison_covers_wearers_and_lab_results(accepted_tables):
    """Guard: the sample above is not all members without data."""
    members = accepted_tables["members"]["member_id"].sample(25, random_state=7).tolist()
    pairs = pd.DataFrame({"member_id": members, "index_date": pd.Timestamp("2023-03-31")})
    feats = compute_features(accepted_tables, pairs)
    assert feats["steps_mean_90d"].notna().sum() >= 3
    assert feats["hba1c_pct_latest"].notna().sum() >= 5

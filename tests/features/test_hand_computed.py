"""Features and labels of a hand-made cohort, against values worked out by hand."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from splits import all_complete_dates_tested, time_split

from chronorisk.data.contracts import validate_tables
from chronorisk.model.product import load_product
from features.build import compute_features
from training.labels import label_index_dates

EXTRACT = date(2024, 12, 31)


@pytest.fixture
def tables(cohort, pepper):
    accepted, _, report = validate_tables(cohort, extract_date=EXTRACT, pepper=pepper)
    assert all(t.rejected == 0 for t in report.tables.values())
    return accepted


def _row(tables, member: str, when: str) -> pd.Series:
    pairs = pd.DataFrame({"member_id": [member], "index_date": [pd.Timestamp(when)]})
    return compute_features(tables, pairs).iloc[0]


def test_consultation_features_of_a_healthy_member(tables):
    f = _row(tables, "M-1001", "2022-01-01")
    assert f["bmi_latest"] == pytest.approx(58.5 / 1.62**2)  # 22.291
    assert f["sbp_mmhg_latest"] == 118.0
    assert f["high_bp_readings"] == 0.0
    assert f["dx_hypertension"] == 0.0
    assert f["smoker_recorded"] == 0.0
    assert f["consultations_365d"] == 1.0  # 2021-07-08
    assert f["online_share_365d"] == 1.0
    assert f["days_since_last_consultation"] == 177.0  # 2021-07-08 -> 2022-01-01
    assert f["consultation_history_days"] == 365.0  # 2019-03-04 -> 2022-01-01 is 1,034 days: capped at a year
    assert f["age_years"] == pytest.approx((date(2022, 1, 1) - date(1970, 5, 10)).days / 365.25)


def test_lab_features_use_canonical_units(tables):
    f = _row(tables, "M-1001", "2022-01-01")
    assert f["hba1c_pct_latest"] == pytest.approx(48 / 10.929 + 2.15, abs=1e-9)  # 48 mmol/mol = 6.54 %
    assert f["fasting_glucose_mmol_l_latest"] == 5.4
    assert f["hba1c_days_since"] == 671.0  # 2020-03-01 -> 2022-01-01
    assert f["lab_days_365d"] == 0.0
    assert pd.isna(f["hba1c_pct_per_year"])  # a single result has no trend


def test_a_treated_hypertensive_member_has_flags_and_counts(tables):
    f = _row(tables, "M-1002", "2022-01-01")
    assert f["bmi_latest"] == pytest.approx(86.0 / 1.755**2)  # latest weight, median height
    assert f["bmi_change_1y"] == 0.0  # the 2020-09-10 weight is both latest and one to two years back
    assert f["high_bp_readings"] == 1.0  # 145/92 yes, 138/88 no
    assert f["dx_hypertension"] == 1.0
    assert f["rx_antihypertensive"] == 1.0
    assert f["smoker_recorded"] == 1.0
    assert f["waist_cm_latest"] == 97.0


def test_wearable_windows_count_only_days_with_data(tables):
    f = _row(tables, "M-1001", "2023-01-06")
    assert f["steps_mean_30d"] == pytest.approx((6012 + 7450 + 5120 + 9033) / 4)  # one day has no steps
    assert f["steps_median_90d"] == pytest.approx((6012 + 7450) / 2)
    assert f["wear_coverage_30d"] == pytest.approx(5 / 30)
    assert f["share_days_8000_90d"] == pytest.approx(1 / 4)
    assert f["rhr_mean_30d"] == pytest.approx((62 + 61.5 + 63 + 60.5) / 4)
    assert f["sleep_mean_90d"] == pytest.approx((420 + 395 + 440 + 410) / 4)


def test_a_member_without_a_device_has_no_activity_but_zero_coverage(tables):
    f = _row(tables, "M-1002", "2023-06-01")
    assert pd.isna(f["steps_mean_90d"])
    assert f["wear_coverage_90d"] == 0.0


def test_a_trend_needs_results_spread_over_time(tables):
    extra = pd.DataFrame({"member_id": ["M-1005", "M-1005"], "date": pd.to_datetime(["2019-08-02", "2020-02-02"]),
                          "test": ["hba1c", "hba1c"], "value": [5.2, 5.4], "unit": ["%", "%"]})
    t = dict(tables)
    t["lab_results"] = pd.concat([tables["lab_results"], extra.astype({"date": tables["lab_results"]["date"].dtype})],
                                 ignore_index=True)
    f = _row(t, "M-1005", "2022-06-01")
    # 5.2 (2019-08-02), 5.4 (2020-02-02), 5.6 (2022-02-02, already in the cohort): least squares by hand.
    days = [0, 184, 184 + 366 + 365]
    xs = [d / 365.25 for d in days]
    ys = [5.2, 5.4, 5.6]
    mx, my = sum(xs) / 3, sum(ys) / 3
    expected = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    assert f["hba1c_pct_per_year"] == pytest.approx(expected, rel=1e-9)


def test_results_older_than_three_years_leave_values_and_trends(tables):
    old = pd.DataFrame({"member_id": ["M-1005"], "date": pd.to_datetime(["2019-02-02"]), "test": ["hba1c"],
                        "value": [5.2], "unit": ["%"]})
    newer = pd.DataFrame({"member_id": ["M-1005"], "date": pd.to_datetime(["2020-02-02"]), "test": ["hba1c"],
                          "value": [5.4], "unit": ["%"]})
    t = dict(tables)
    dtype = tables["lab_results"]["date"].dtype
    t["lab_results"] = pd.concat([tables["lab_results"], old.astype({"date": dtype}), newer.astype({"date": dtype})],
                                 ignore_index=True)
    f = _row(t, "M-1005", "2022-06-01")
    # 2019-02-02 is 1,215 days back (over 1,096): only 5.4 (2020-02-02) and 5.6 (2022-02-02) make the trend.
    assert f["hba1c_pct_per_year"] == pytest.approx(0.2 / ((366 + 365) / 365.25), rel=1e-9)
    t["lab_results"] = pd.concat([tables["lab_results"], old.astype({"date": dtype})], ignore_index=True)
    t["lab_results"] = t["lab_results"][~((t["lab_results"]["member_id"] == "M-1005")
                                          & (t["lab_results"]["date"] > pd.Timestamp("2019-03-01")))]
    f = _row(t, "M-1005", "2022-06-01")
    assert pd.isna(f["hba1c_pct_latest"])  # measured long ago: no value within three years ...
    assert f["hba1c_days_since"] == 1096.0  # ... and "three years or more", which is not "never"
    assert pd.isna(_row(t, "M-1005", "2019-01-01")["hba1c_days_since"])  # never measured before then


def test_diabetes_labels_of_the_hand_cohort(cohort, pepper):
    cohort["members"].loc[cohort["members"]["member_id"] == "M-1003", "enrollment_end"] = date(2022, 6, 30)
    accepted, _, _ = validate_tables(cohort, extract_date=EXTRACT, pepper=pepper)
    labelled = label_index_dates(accepted, time_split(load_product("diabetes")), EXTRACT)
    c = labelled.counts
    assert (c.candidates, c.not_enrolled, c.short_history, c.prevalent, c.lost_to_follow_up) == (24, 2, 3, 3, 2)
    assert c.rows == 14 and c.positives == 5
    assert c.candidates == c.not_enrolled + c.short_history + c.prevalent + c.lost_to_follow_up + c.rows
    rows = labelled.rows.set_index(["member_id", "index_date"])
    assert rows.loc[("M-1002", pd.Timestamp("2018-01-01")), "event_date"] == pd.Timestamp("2019-05-06")  # E11.9
    assert rows.loc[("M-1001", pd.Timestamp("2020-01-01")), "event_date"] == pd.Timestamp("2020-03-01")  # 6.54 %
    assert rows.loc[("M-1003", pd.Timestamp("2019-01-01")), "label"] == 0
    assert rows.loc[("M-1004", pd.Timestamp("2021-01-01")), "split"] == "test"


def test_censored_rows_are_kept_with_the_end_of_their_follow_up(cohort, pepper):
    cohort["members"].loc[cohort["members"]["member_id"] == "M-1003", "enrollment_end"] = date(2022, 6, 30)
    accepted, _, _ = validate_tables(cohort, extract_date=EXTRACT, pepper=pepper)
    labelled = label_index_dates(accepted, all_complete_dates_tested(load_product("diabetes")), EXTRACT)
    rows = labelled.rows.set_index(["member_id", "index_date"])
    left = rows.loc[("M-1003", pd.Timestamp("2020-01-01"))]  # leaves 2022-06-30, 2.5 years into the horizon
    assert (left["label"], bool(left["complete"])) == (0, False)
    assert left["followup_end"] == pd.Timestamp("2022-07-01")
    late = rows.loc[("M-1001", pd.Timestamp("2024-01-01"))] if ("M-1001", pd.Timestamp("2024-01-01")) in rows.index \
        else None
    event = rows.loc[("M-1002", pd.Timestamp("2018-01-01"))]  # E11.9 on 2019-05-06: follow-up ends there
    assert (event["label"], bool(event["complete"]), event["followup_end"]) == (1, True, pd.Timestamp("2019-05-06"))
    assert late is None or late["followup_end"] <= pd.Timestamp("2025-01-01")
    assert labelled.counts.lost_to_follow_up == 0 and labelled.counts.censored >= 1
    assert labelled.counts.rows == len(labelled.rows)


def test_two_high_readings_make_a_hypertension_event_at_the_second(cohort, pepper):
    cons = cohort["consultations"]
    cons.loc[cons["consultation_id"] == "C-0009", ["sbp_mmhg", "dbp_mmhg", "channel"]] = [142.0, 85.0, "outpatient"]
    cons.loc[cons["consultation_id"] == "C-0010", ["sbp_mmhg", "dbp_mmhg"]] = [141.0, 80.0]
    accepted, _, _ = validate_tables(cohort, extract_date=EXTRACT, pepper=pepper)
    rows = label_index_dates(accepted, all_complete_dates_tested(load_product("hypertension")), EXTRACT).rows.set_index(
        ["member_id", "index_date"])
    assert rows.loc[("M-1005", pd.Timestamp("2021-01-01")), "event_date"] == pd.Timestamp("2021-08-09")
    assert rows.loc[("M-1005", pd.Timestamp("2020-01-01")), "label"] == 1

"""No feature peeks into the future: records on or after the index date change nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.build import compute_features

INDEX = pd.Timestamp("2021-01-01")
DATED = {"consultations": "date", "lab_results": "date", "wearable_daily": "date", "applications": "application_date"}


def _features(tables, member: str) -> pd.DataFrame:
    return compute_features(tables, pd.DataFrame({"member_id": [member], "index_date": [INDEX]}))


def _future_edit(tables, member: str, table: str, op: str, days_after: int, factor: float):
    """A copy of the tables with one record of `member` dated on/after INDEX added, removed or changed."""
    out = dict(tables)
    frame = tables[table]
    col = DATED[table]
    mine = frame[frame["member_id"] == member]
    when = INDEX + pd.Timedelta(days=days_after)
    if op == "add" or mine.empty:
        template = mine.head(1) if not mine.empty else frame.head(1).assign(member_id=member)
        new = template.copy()
        new[col] = when
        numeric = new.select_dtypes("float").columns
        new[numeric] = new[numeric] * factor
        if "consultation_id" in new:
            new["consultation_id"] = f"C-FUTURE-{days_after}"
        out[table] = pd.concat([frame, new], ignore_index=True)
        return out
    future = mine[mine[col] >= INDEX]
    if future.empty:  # nothing of this member's to remove or change after INDEX: add one instead
        return _future_edit(tables, member, table, "add", days_after, factor)
    target = future.index[days_after % len(future)]
    if op == "remove":
        out[table] = frame.drop(index=target)
    else:
        changed = frame.copy()
        numeric = list(changed.select_dtypes("float").columns)
        changed.loc[target, numeric] = changed.loc[target, numeric] * factor
        out[table] = changed
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(member_pick=st.integers(0, 10_000), table=st.sampled_from(sorted(DATED)),
       op=st.sampled_from(["add", "remove", "change"]), days_after=st.integers(0, 1200),
       factor=st.floats(0.5, 2.0))
def test_future_records_do_not_change_features(accepted_tables, member_pick, table, op, days_after, factor):
    members = accepted_tables["members"]["member_id"]
    member = members.iloc[member_pick % len(members)]
    before = _features(accepted_tables, member)
    after = _features(_future_edit(accepted_tables, member, table, op, days_after, factor), member)
    pd.testing.assert_frame_equal(before, after, check_exact=True)


def test_a_record_the_day_before_the_index_date_is_used(accepted_tables):
    """The guard against a vacuous property: a past record does move the features."""
    member = accepted_tables["members"]["member_id"].iloc[0]
    tables = dict(accepted_tables)
    lab = pd.DataFrame({"member_id": [member], "date": [INDEX - pd.Timedelta(days=1)], "test": ["hba1c"],
                        "value": [9.9], "unit": ["%"]}).astype({"date": tables["lab_results"]["date"].dtype})
    tables["lab_results"] = pd.concat([tables["lab_results"], lab], ignore_index=True)
    feats = _features(tables, member)
    assert feats["hba1c_pct_latest"].iloc[0] == 9.9
    assert feats["hba1c_days_since"].iloc[0] == 1.0
    assert not np.isnan(feats["age_years"].iloc[0])

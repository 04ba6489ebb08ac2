"""Point-in-time joins: the records each (member, index date) pair may see.

Every feature group starts here, so the rule "a record dated on or after the index date is
never used" lives in one place and the no-leakage property test guards it for all groups.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

KEY = ["member_id", "index_date"]
YEAR_DAYS = 365.25


def index_frame(pairs: pd.DataFrame) -> pd.DataFrame:
    """Normalise (member_id, index_date) pairs: string ids, second-resolution dates, no duplicates."""
    missing = {"member_id", "index_date"} - set(pairs.columns)
    if missing:
        raise ValueError(f"index pairs need columns member_id and index_date; missing {sorted(missing)}")
    out = pd.DataFrame({
        "member_id": pairs["member_id"].astype("str"),
        "index_date": pd.to_datetime(pairs["index_date"]).astype("datetime64[s]").dt.normalize(),
    })
    if out["index_date"].isna().any():
        raise ValueError(f"index pairs: {int(out['index_date'].isna().sum())} rows have no index_date")
    return out.drop_duplicates(KEY, ignore_index=True)


def records_before(records: pd.DataFrame, index: pd.DataFrame, *, date_col: str = "date",
                   within_days: int | None = None, tiebreak: tuple[str, ...] = ()) -> pd.DataFrame:
    """Records of each pair dated strictly before its index date (and within `within_days`).

    Rows come out sorted by pair, date and `tiebreak`, never by input order, so one applicant's
    records sent in any order give the very same sums as the batch (online == offline, bit for
    bit). Adds `days_before` (1 for the day before the index date).
    """
    merged = index[KEY].merge(records, on="member_id", how="inner")
    when = merged[date_col]
    keep = (when < merged["index_date"]).to_numpy(dtype=bool, na_value=False)
    if within_days is not None:
        recent = when >= merged["index_date"] - pd.Timedelta(days=within_days)
        keep = keep & recent.to_numpy(dtype=bool, na_value=False)
    merged = merged.loc[keep].sort_values([*KEY, date_col, *tiebreak], kind="stable", ignore_index=True)
    merged["days_before"] = (merged["index_date"] - merged[date_col]).dt.days.astype("int64")
    return merged


def aligned(frame: pd.DataFrame, index: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Features indexed by KEY, reindexed to the index pairs (missing stays NaN), float64."""
    target = pd.MultiIndex.from_frame(index[KEY])
    out = frame.reindex(columns=columns).reindex(target)
    return out.astype("float64")


def latest(records: pd.DataFrame, columns: list[str], *, date_col: str = "date") -> pd.DataFrame:
    """Per pair, the most recent non-missing value of each column (ties: the later row)."""
    ordered = records.sort_values([*KEY, date_col], kind="stable")
    return ordered.groupby(KEY, sort=False)[columns].last()


def slope_per_year(records: pd.DataFrame, value: str, by: list[str] | None = None,
                   min_span_days: int = 90) -> pd.Series:
    """Least-squares slope of `value` against time (units per year) per group.

    NaN unless the measurements span at least `min_span_days`: two readings a day apart say
    nothing about a trend. Centred sums keep the arithmetic exact enough to be order-free.
    """
    by = by or KEY
    frame = records.loc[records[value].notna(), [*by, value, "days_before"]]
    x = -frame["days_before"].to_numpy(dtype=float) / YEAR_DAYS
    y = frame[value].to_numpy(dtype=float)
    frame = frame.assign(_x=x, _y=y, _n=1.0)
    grouped = frame.groupby(by, sort=False)
    means = grouped[["_x", "_y"]].transform("mean")
    dx = x - means["_x"].to_numpy()
    dy = y - means["_y"].to_numpy()
    frame = frame.assign(_xx=dx * dx, _xy=dx * dy)
    s = frame.groupby(by, sort=False).agg(xx=("_xx", "sum"), xy=("_xy", "sum"), lo=("_x", "min"), hi=("_x", "max"))
    ok = (s["hi"] - s["lo"]) * YEAR_DAYS >= min_span_days
    return pd.Series(np.where(ok, s["xy"] / s["xx"].where(ok, 1.0), np.nan), index=s.index)

"""Index dates and labels: who is eligible at each index date, and whose event follows within the horizon.

The label is the first qualifying *recorded* event in [t, t + horizon). A member with an event
before t is prevalent and excluded. A member followed for less than the horizon without an
event (left the book, or the extract ends) is kept under the `member_and_time` split with the
date their follow-up ends (`followup_end`, `complete` false), so the censoring-aware model learns
from every observed year (the split is `chronorisk/model/product.py` SplitSpec);
under the first wave's `time` split such a
row is dropped and counted, never silently labelled negative.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from chronorisk.data.enrolment import enrolled_on
from chronorisk.data.table import Table, floats, plain
from chronorisk.data.text_columns import ColumnArray
from chronorisk.model.product import ProductSpec, split_rows
from features.consultations import code_hits


@dataclass
class LabelCounts:
    """Why candidate (member, index date) rows did or did not become labelled rows."""

    candidates: int = 0
    not_enrolled: int = 0
    short_history: int = 0
    prevalent: int = 0
    lost_to_follow_up: int = 0
    beyond_extract: int = 0
    unused_test_member_dates: int = 0  # a test member's index dates before the test dates
    rows: int = 0
    positives: int = 0
    censored: int = 0  # kept rows followed for less than the horizon without an event

    def add(self, other: LabelCounts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass
class Labelled:
    rows: pd.DataFrame  # member_id, index_date, split, label, event_date, followup_end, complete
    counts: LabelCounts = field(default_factory=LabelCounts)


def _prefix_match(codes: pd.Series | ColumnArray, prefixes: list[str]) -> np.ndarray:
    """Rows whose ";"-separated code list holds a code starting with one of the prefixes."""
    if not prefixes:
        return np.zeros(len(codes), dtype=bool)
    return code_hits(codes, {"event": _prefix_pattern(tuple(prefixes))})["event"]


@functools.lru_cache(maxsize=64)
def _prefix_pattern(prefixes: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("(?:^|;)(?:" + "|".join(re.escape(p) for p in prefixes) + ")")


def event_records(tables: Mapping[str, pd.DataFrame | Table], spec: ProductSpec) -> tuple[np.ndarray, np.ndarray]:
    """(member id, date) of every record that meets the product's event definition, in no order.

    Plain arrays rather than frames: the online service asks this of one applicant's few rows
    (is the disease already on record?), where each pandas call would cost more than the answer.
    """
    ev = spec.event
    if ev is None:  # outcome taken from an extract: no event definition to find in the records
        return np.zeros(0, dtype=object), np.zeros(0, dtype="datetime64[s]")
    members: list[np.ndarray] = []
    dates: list[np.ndarray] = []
    cons = tables["consultations"]
    if len(cons):
        ids, when = plain(cons["member_id"]).astype(object), plain(cons["date"])
        hit = _prefix_match(cons["icd10_codes"], ev.icd10_prefixes) | _prefix_match(cons["atc_codes"], ev.atc_prefixes)
        members.append(ids[hit])
        dates.append(when[hit])
        if ev.high_readings is not None:
            r = ev.high_readings
            sbp, dbp = floats(cons["sbp_mmhg"]), floats(cons["dbp_mmhg"])
            high = np.flatnonzero((sbp >= r.sbp_mmhg) | (dbp >= r.dbp_mmhg))
            if len(high):  # the count-th high reading of each member, in date order
                readings = pd.DataFrame({"member_id": ids[high], "date": when[high]}).sort_values(
                    ["member_id", "date"], kind="stable")
                nth = readings.groupby("member_id", sort=False).cumcount().to_numpy() + 1
                members.append(readings["member_id"].to_numpy(dtype=object)[nth == r.count])
                dates.append(readings["date"].to_numpy()[nth == r.count])
    labs = tables["lab_results"]
    if len(labs) and ev.lab_thresholds:
        test = plain(labs["test"])  # missing is NaN, equal to no test
        value = floats(labs["value"])
        hit = np.zeros(len(labs), dtype=bool)
        for t in ev.lab_thresholds:
            hit |= (test == t.test) & (value >= t.at_least)
        members.append(plain(labs["member_id"]).astype(object)[hit])
        dates.append(plain(labs["date"])[hit])
    if not members:
        return np.zeros(0, dtype=object), np.zeros(0, dtype="datetime64[s]")
    return np.concatenate(members), np.concatenate(dates)


def recorded_events(tables: Mapping[str, pd.DataFrame], spec: ProductSpec) -> pd.Series:
    """Date of each member's first recorded event under the product's definition (members without: absent)."""
    members, dates = event_records(tables, spec)
    if not len(members):
        return pd.Series(dtype="datetime64[s]", name="first_event")
    allev = pd.DataFrame({"member_id": pd.array(members, dtype="str"), "date": dates})
    return allev.groupby("member_id", sort=False)["date"].min().rename("first_event")


def label_index_dates(tables: Mapping[str, pd.DataFrame], spec: ProductSpec,
                      extract_date: date | None = None) -> Labelled:
    """Every eligible (member, index date) of the product with its label, and the counts of the rest.

    With `extract_date`, follow-up ends on the day after it at the latest. Under the `time` split a
    row whose window is not fully observed is dropped and counted (lost to follow-up, or beyond
    the extract); under `member_and_time` it is kept, with the end of its follow-up.
    """
    members = tables["members"][["member_id", "enrollment_start", "enrollment_end"]]
    extract_end = pd.Timestamp(extract_date) + pd.Timedelta(days=1) if extract_date is not None else None
    keep_censored = spec.split is not None and spec.split.scheme == "member_and_time"
    first = recorded_events(tables, spec)
    counts = LabelCounts()
    frames = []
    horizon = pd.DateOffset(years=spec.horizon_years)
    for d in spec.index_dates:
        t = pd.Timestamp(d)
        m = members.assign(index_date=t)
        counts.candidates += len(m)
        start = m["enrollment_start"]
        enrolled = enrolled_on(m, t)
        counts.not_enrolled += int((~enrolled).sum())
        history = (start <= t - pd.Timedelta(days=spec.exclusions.min_history_days)).to_numpy(dtype=bool,
                                                                                               na_value=False)
        short = enrolled & ~history
        counts.short_history += int(short.sum())
        m = m[enrolled & history]
        ev = pd.Series(first.reindex(m["member_id"]).to_numpy(dtype="datetime64[s]"), index=m.index)
        prevalent = (ev < t).to_numpy(dtype=bool, na_value=False) if spec.exclusions.prevalent_event else np.zeros(
            len(m), dtype=bool)
        counts.prevalent += int(prevalent.sum())
        m, ev = m[~prevalent], ev[~prevalent]
        window_end = t + horizon
        # Follow-up ends at the window's end, the day after leaving, or the day after the extract.
        left_at = (m["enrollment_end"] + pd.Timedelta(days=1)).to_numpy(dtype="datetime64[s]")
        obs_end = np.full(len(m), window_end.to_datetime64().astype("datetime64[s]"))
        obs_end = np.where(np.isnat(left_at) | (left_at > obs_end), obs_end, left_at)
        if extract_end is not None:
            obs_end = np.minimum(obs_end, extract_end.to_datetime64().astype("datetime64[s]"))
        ev_arr = ev.to_numpy(dtype="datetime64[s]")
        positive = ~np.isnat(ev_arr) & (ev_arr >= t.to_datetime64()) & (ev_arr < obs_end)
        left = (m["enrollment_end"] < window_end).to_numpy(dtype=bool, na_value=False) & ~positive
        beyond = np.zeros(len(m), dtype=bool)
        if extract_end is not None and window_end > extract_end:
            beyond = ~positive & ~left
        complete = positive | ~(left | beyond)
        part = split_rows(spec, m["member_id"].to_numpy(dtype=object), d)
        unused = part == "unused"
        counts.unused_test_member_dates += int(unused.sum())
        if keep_censored:
            keep = ~unused
            counts.censored += int((keep & ~complete).sum())
        else:
            counts.lost_to_follow_up += int((left & ~unused).sum())
            counts.beyond_extract += int((beyond & ~unused).sum())
            keep = complete & ~unused
        out = pd.DataFrame({
            "member_id": m["member_id"].to_numpy()[keep],
            "index_date": np.full(int(keep.sum()), t.to_datetime64().astype("datetime64[s]")),
            "split": part[keep].astype(str),
            "label": positive[keep].astype("int8"),
            "event_date": ev_arr[keep],
            "followup_end": np.where(positive, ev_arr, obs_end)[keep],
            "complete": complete[keep],
        })
        out["event_date"] = pd.to_datetime(out["event_date"]).where(out["label"] == 1)
        frames.append(out)
    rows = pd.concat(frames, ignore_index=True)
    counts.rows = len(rows)
    counts.positives = int(rows["label"].sum())
    return Labelled(rows=rows, counts=counts)

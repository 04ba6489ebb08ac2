"""Point-in-time joins and grouped reductions: the records each (member, index date) pair may see.

Every feature group starts with `join_before`, so the rule "a record dated on or after the
index date is never used" lives in one place (and the no-leakage property test guards it).
The reductions are plain numpy over rows sorted by pair, date and tie-breaks: no pandas
groupby, so one applicant costs microseconds per feature and a million members stay
vectorised; rows come out in an order that does not depend on the input order, so one
applicant's records give the batch's sums bit for bit (online == offline).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from chronorisk.data.table import Table, floats, plain, positions, text
from chronorisk.data.text_columns import ColumnArray
from chronorisk.data.units import YEAR_DAYS

KEY = ["member_id", "index_date"]


def index_frame(pairs: pd.DataFrame) -> pd.DataFrame:
    """Normalise (member_id, index_date) pairs: string ids, second-resolution dates, no duplicates."""
    missing = {"member_id", "index_date"} - set(pairs.columns)
    if missing:
        raise ValueError(f"index pairs need columns member_id and index_date; missing {sorted(missing)}")
    dates = pairs["index_date"]
    if dates.dtype != "datetime64[s]":
        dates = pd.to_datetime(dates).astype("datetime64[s]")
    out = pd.DataFrame({"member_id": pairs["member_id"].astype("str"), "index_date": dates.dt.normalize()})
    if out["index_date"].isna().any():
        raise ValueError(f"index pairs: {int(out['index_date'].isna().sum())} rows have no index_date")
    if len(out) == 1:  # one applicant: nothing to drop, and drop_duplicates costs ~1 ms of pandas calls
        return out.reset_index(drop=True) if out.index[0] != 0 else out
    return out.drop_duplicates(KEY, ignore_index=True)


def day_numbers(dates: pd.Series | np.ndarray) -> np.ndarray:
    return np.asarray(dates, dtype="datetime64[D]").astype(np.int64)


@dataclass(frozen=True)
class Pairs:
    """The index pairs, prepared once per feature build: member codes and index days."""

    member_ids: np.ndarray  # str objects
    index_dates: np.ndarray  # datetime64[s], whole days
    member_codes: np.ndarray
    members: ColumnArray  # the distinct member ids, as text
    days: np.ndarray
    by_member: np.ndarray  # pair positions sorted by member code
    starts: np.ndarray  # per member code: first position in by_member
    counts: np.ndarray

    @property
    def n(self) -> int:
        return len(self.member_ids)

    @classmethod
    def of(cls, member_ids: np.ndarray, index_dates: np.ndarray) -> Pairs:
        """From distinct (member id, index date) pairs: str ids, dates at day resolution (`index_frame`'s)."""
        codes, members = pd.factorize(member_ids)
        order = np.argsort(codes, kind="stable")
        counts = np.bincount(codes, minlength=len(members))
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        return cls(member_ids, index_dates, codes.astype(np.int64), text(np.asarray(members, dtype=object)),
                   day_numbers(index_dates), order, starts, counts)

    @classmethod
    def of_frame(cls, pairs: pd.DataFrame) -> Pairs:
        index = index_frame(pairs)
        return cls.of(index["member_id"].to_numpy(dtype=object), index["index_date"].to_numpy())


class Columns:
    """A table's columns as numpy arrays, each converted once however many features read it."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._float: dict[str, np.ndarray] = {}
        self._raw: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.table)

    def float(self, name: str) -> np.ndarray:
        if name not in self._float:
            self._float[name] = floats(self.table[name])
        return self._float[name]

    def raw(self, name: str) -> np.ndarray:
        if name not in self._raw:
            self._raw[name] = plain(self.table[name])
        return self._raw[name]


@dataclass(frozen=True)
class Joined:
    """Records joined to the pairs that may see them, sorted by pair, date and tie-breaks."""

    g: np.ndarray  # pair position of each row, ascending
    days_before: np.ndarray  # 1 for the day before the index date
    rows: np.ndarray  # row positions in the source records
    source: Columns
    n_pairs: int

    def __len__(self) -> int:
        return len(self.g)

    def col(self, name: str) -> np.ndarray:
        """A numeric column of the joined rows as float64 (missing -> NaN)."""
        return self.source.float(name)[self.rows]

    def raw(self, name: str) -> np.ndarray:
        return self.source.raw(name)[self.rows]

    def where(self, mask: np.ndarray) -> Joined:
        return Joined(self.g[mask], self.days_before[mask], self.rows[mask], self.source, self.n_pairs)


def _sort_key(values: ColumnArray) -> np.ndarray:
    """A key that sorts like the values themselves, whatever else is in the table (numbers as
    numbers, text by its sorted codes), so ties are broken by content, never by input order."""
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return floats(values)
    codes, _ = pd.factorize(text(values), sort=True)
    return np.asarray(codes, dtype=np.int64)


def _has_ties(g: np.ndarray, before: np.ndarray) -> bool:
    """Whether two rows (sorted by pair and day) share a pair and a day."""
    return bool(len(g) > 1 and ((g[1:] == g[:-1]) & (before[1:] == before[:-1])).any())


def _rows_before(records: Table, cols: Columns, pairs: Pairs, date_col: str, within_days: int | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pair position, row position, days before the index date) of every record a pair may see, unordered."""
    member = positions(pairs.members, records["member_id"])
    known = np.flatnonzero(member >= 0)
    member = member[known]
    reps = pairs.counts[member]
    rows = np.repeat(known, reps)
    offset = np.arange(len(rows)) - np.repeat(np.cumsum(reps) - reps, reps)
    g = pairs.by_member[np.repeat(pairs.starts[member], reps) + offset]
    rec_days = day_numbers(cols.raw(date_col))[rows]
    before = pairs.days[g] - rec_days
    keep = before >= 1
    if within_days is not None:
        keep &= before <= within_days
    return g[keep], rows[keep], before[keep]


def join_before(records: Table, pairs: Pairs, *, date_col: str = "date", within_days: int | None = None,
                tiebreak: Sequence[str] = ()) -> Joined:
    """Rows of `records` dated strictly before each pair's index date (and within `within_days`)."""
    cols = Columns(records)
    empty = Joined(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), cols, pairs.n)
    if len(records) == 0 or pairs.n == 0:
        return empty
    g, rows, before = _rows_before(records, cols, pairs, date_col, within_days)
    order = np.lexsort([rows, -before, g])
    if tiebreak and _has_ties(g[order], before[order]):  # only same-day rows need the content keys
        keys = [rows] + [_sort_key(records[c])[rows] for c in reversed(tiebreak)] + [-before, g]
        order = np.lexsort(keys)
    return Joined(g[order], before[order], rows[order], cols, pairs.n)


def count_before(records: Table, pairs: Pairs, *, date_col: str = "date") -> np.ndarray:
    """Per pair, how many of `records` are dated strictly before its index date: `count(join_before(...))`
    without the ordering, which a count does not need (the knock-outs ask it of every request)."""
    if len(records) == 0 or pairs.n == 0:
        return np.zeros(pairs.n)
    g, _, _ = _rows_before(records, Columns(records), pairs, date_col, None)
    return np.bincount(g, minlength=pairs.n).astype(float)


# --- reductions over the joined rows, one value per pair (NaN where a pair has no valid row) ---


def count(j: Joined, mask: np.ndarray | None = None) -> np.ndarray:
    g = j.g if mask is None else j.g[mask]
    return np.bincount(g, minlength=j.n_pairs).astype(float)


def mean(j: Joined, x: np.ndarray) -> np.ndarray:
    ok = ~np.isnan(x)
    n = np.bincount(j.g[ok], minlength=j.n_pairs)
    s = np.bincount(j.g[ok], weights=x[ok], minlength=j.n_pairs)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def std(j: Joined, x: np.ndarray) -> np.ndarray:
    """Sample standard deviation (ddof 1), two-pass for accuracy; NaN below two values."""
    ok = ~np.isnan(x)
    g, v = j.g[ok], x[ok]
    n = np.bincount(g, minlength=j.n_pairs)
    m = np.bincount(g, weights=v, minlength=j.n_pairs) / np.maximum(n, 1)
    ss = np.bincount(g, weights=(v - m[g]) ** 2, minlength=j.n_pairs)
    return np.where(n > 1, np.sqrt(ss / np.maximum(n - 1, 1)), np.nan)


def _last_positions(g: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.r_[g[1:] != g[:-1], True]) if len(g) else np.zeros(0, np.int64)


def last(j: Joined, x: np.ndarray) -> np.ndarray:
    """The most recent non-missing value per pair (rows are in date order within a pair)."""
    out = np.full(j.n_pairs, np.nan)
    ok = np.flatnonzero(~np.isnan(x))
    pos = ok[_last_positions(j.g[ok])]
    out[j.g[pos]] = x[pos]
    return out


def last_row(j: Joined) -> np.ndarray:
    """Row position (in the joined rows) of each pair's latest record; -1 for pairs without one."""
    out = np.full(j.n_pairs, -1, dtype=np.int64)
    pos = _last_positions(j.g)
    out[j.g[pos]] = pos
    return out


def minimum(j: Joined, x: np.ndarray) -> np.ndarray:
    out = np.full(j.n_pairs, np.inf)
    ok = ~np.isnan(x)
    np.minimum.at(out, j.g[ok], x[ok])
    return np.where(np.isinf(out), np.nan, out)


def maximum(j: Joined, x: np.ndarray) -> np.ndarray:
    out = np.full(j.n_pairs, -np.inf)
    ok = ~np.isnan(x)
    np.maximum.at(out, j.g[ok], x[ok])
    return np.where(np.isinf(out), np.nan, out)


def median(j: Joined, x: np.ndarray) -> np.ndarray:
    ok = ~np.isnan(x)
    g, v = j.g[ok], x[ok]
    order = np.lexsort((v, g))
    g, v = g[order], v[order]
    n = np.bincount(g, minlength=j.n_pairs)
    start = np.concatenate([[0], np.cumsum(n)[:-1]])
    has = n > 0
    lo = v[(start + (n - 1) // 2)[has]]
    hi = v[(start + n // 2)[has]]
    out = np.full(j.n_pairs, np.nan)
    out[has] = (lo + hi) / 2.0
    return out


def slope_per_year(j: Joined, y: np.ndarray, min_span_days: int = 90) -> np.ndarray:
    """Least-squares slope of y against time (units per year) per pair.

    NaN unless the values span at least `min_span_days`: two readings a day apart say nothing
    about a trend. Centred sums keep the arithmetic accurate.
    """
    ok = ~np.isnan(y)
    g, v = j.g[ok], y[ok]
    x = -j.days_before[ok].astype(float) / YEAR_DAYS
    n = np.bincount(g, minlength=j.n_pairs)
    mx = np.bincount(g, weights=x, minlength=j.n_pairs) / np.maximum(n, 1)
    my = np.bincount(g, weights=v, minlength=j.n_pairs) / np.maximum(n, 1)
    dx = x - mx[g]
    sxx = np.bincount(g, weights=dx * dx, minlength=j.n_pairs)
    sxy = np.bincount(g, weights=dx * (v - my[g]), minlength=j.n_pairs)
    span = maximum(j.where(ok), x) - minimum(j.where(ok), x)
    good = (span * YEAR_DAYS >= min_span_days) & (sxx > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(good, sxy / np.where(good, sxx, 1.0), np.nan)


def distinct_days(j: Joined) -> np.ndarray:
    """Days with at least one row, per pair (rows are sorted by pair and date)."""
    if len(j) == 0:
        return np.zeros(j.n_pairs)
    new = np.r_[True, (j.g[1:] != j.g[:-1]) | (j.days_before[1:] != j.days_before[:-1])]
    return np.bincount(j.g[new], minlength=j.n_pairs).astype(float)

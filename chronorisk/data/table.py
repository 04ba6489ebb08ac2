"""A table as one array per column: what the contracts and the one feature function compute on.

A pandas operation has a fixed cost of ~10-50 µs, which is the whole cost on one applicant's
handful of rows (a request built 13 DataFrames and looked up 102 columns, ~30 ms); numpy
arrays and pandas' own extension arrays (Arrow strings, nullable ints and booleans) cost
microseconds there and the same per row on a million. A batch frame becomes a Table once, its
columns taken as they are (nothing copied); a request becomes one without a frame at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.compute as pc
from pandas.arrays import ArrowStringArray, BooleanArray, IntegerArray

from chronorisk.data.text_columns import ColumnArray, arrow_strings

__all__ = ["Table", "column_array", "column_of", "floats", "plain", "positions", "text"]


class Table:
    """Named columns of equal length; `len` is the number of rows, as for a DataFrame."""

    __slots__ = ("_columns", "_n")

    def __init__(self, columns: Mapping[str, ColumnArray], n: int | None = None) -> None:
        cols = dict(columns)
        lengths = {len(v) for v in cols.values()}
        if len(lengths) > 1:
            raise ValueError(f"table columns differ in length: {sorted(lengths)}")
        self._columns = cols
        self._n = lengths.pop() if lengths else (n or 0)

    @classmethod
    def of(cls, data: pd.DataFrame | Table) -> Table:
        """A frame's columns as arrays (numpy where the dtype is numpy's, else pandas' array), not copied."""
        if isinstance(data, Table):
            return data
        if data.columns.has_duplicates:  # a header that repeats a name (a CSV's "note,note"): the first one counts
            first = ~data.columns.duplicated()
            return cls({str(name): column_array(data.iloc[:, i]) for i, name in enumerate(data.columns) if first[i]},
                       len(data))
        return cls({str(name): column_array(data[name]) for name in data.columns}, len(data))

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    def __getitem__(self, name: str) -> ColumnArray:
        return self._columns[name]

    def __contains__(self, name: object) -> bool:
        return name in self._columns

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return self._n

    def items(self) -> Iterator[tuple[str, ColumnArray]]:
        return iter(self._columns.items())

    def take(self, positions: np.ndarray) -> Table:
        """The rows at positions, in that order."""
        return Table({k: v[positions] for k, v in self._columns.items()}, len(positions))

    def frame(self) -> pd.DataFrame:
        """The table as a DataFrame (default index), for code that works on frames: batch outputs, files."""
        return pd.DataFrame(self._columns, index=pd.RangeIndex(self._n), copy=False)


def column_array(s: pd.Series) -> ColumnArray:
    """A column's values: numpy for numpy dtypes, else its pandas extension array (neither copied)."""
    return s.to_numpy() if isinstance(s.dtype, np.dtype) else s.array


def floats(values: ColumnArray | pd.Series) -> np.ndarray:
    """float64 values, missing as NaN (nullable ints included)."""
    if isinstance(values, np.ndarray):
        return values if values.dtype == np.float64 else values.astype(np.float64)
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def plain(values: ColumnArray | pd.Series) -> np.ndarray:
    """The values as a numpy array, as `Series.to_numpy` gives them (text as Python str objects, missing NaN)."""
    if isinstance(values, np.ndarray):
        return values
    return values.to_numpy()


def text(values: ColumnArray | pd.Series) -> ColumnArray:
    """The values as pandas' str array (as `astype("str")` gives), itself where it is one already."""
    values = values.array if isinstance(values, pd.Series) else values
    return values if isinstance(values.dtype, pd.StringDtype) else pd.array(plain(values), dtype="str")


_STR = pd.array([], dtype="str").dtype  # the canonical text dtype: Arrow-backed, NaN for missing


def column_of(kind: str, values: Sequence[Any]) -> ColumnArray:
    """Python values (None for missing) as a column of the kind's canonical dtype (chronorisk.data.units
    CANONICAL_DTYPES), built directly: `pd.array` infers and checks for ~25 µs a column, more than
    one applicant's rules cost. Dates are `datetime.date`s; text is str, "codes" included."""
    if kind in ("str", "codes"):
        return ArrowStringArray(pyarrow.array(values, pyarrow.large_string()), dtype=_STR)
    if kind == "float":
        return np.array(values, dtype=np.float64)
    if kind == "date":  # through Arrow: numpy converts date objects one by one (~1 µs each)
        days = pyarrow.array(values, pyarrow.date32()).to_numpy(zero_copy_only=False)
        return days.astype("datetime64[D]").astype("datetime64[s]")
    missing = np.array([v is None for v in values], dtype=bool)
    if kind == "int":
        return IntegerArray(np.array([0 if v is None else v for v in values], dtype=np.int64), missing)
    if kind == "bool":
        return BooleanArray(np.array([bool(v) for v in values], dtype=bool), missing)
    raise ValueError(f"unknown column kind {kind!r}")


def positions(keys: ColumnArray, values: ColumnArray) -> np.ndarray:
    """Per value, the position of the first equal key (-1 where none, or the value is missing): what
    `pd.Index(keys).get_indexer(values)` gives for distinct keys. Text is looked up by Arrow's kernel in
    one call (~15 µs against pandas' ~50 µs: member ids are looked up for every table of every request)."""
    key_arrow, value_arrow = arrow_strings(keys), arrow_strings(values)
    if key_arrow is not None and value_arrow is not None:
        found = pc.index_in(value_arrow, value_set=key_arrow.combine_chunks(), skip_nulls=True)
        return np.asarray(pc.fill_null(found, -1).to_numpy(), dtype=np.int64)
    return np.asarray(pd.Index(keys).get_indexer(values), dtype=np.int64)


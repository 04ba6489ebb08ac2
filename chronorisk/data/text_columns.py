"""String columns compared with the Arrow kernels pandas itself runs for them, called without
pandas' fixed cost per call: the contracts run them on every table, one applicant's included."""

from __future__ import annotations

import functools
from typing import TypeAlias

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.compute as pc
from pandas.api.extensions import ExtensionArray

__all__ = ["ColumnArray", "arrow_strings", "text_blank", "text_equals", "text_fullmatch", "text_in"]

ColumnArray: TypeAlias = np.ndarray | ExtensionArray  # a column's values: numpy (float, date) or pandas' array


def text_equals(column: pd.Series | ColumnArray, text: str) -> np.ndarray:
    """`column == text` as a numpy mask (missing is not equal)."""
    arrow = arrow_strings(column)
    if arrow is None:
        return (pd.Series(column, copy=False) == text).to_numpy(dtype=bool, na_value=False)
    return pc.fill_null(pc.equal(arrow, _arrow_scalar(text, arrow.type)), _FALSE).to_numpy()


def text_in(column: pd.Series | ColumnArray, texts: tuple[str, ...]) -> np.ndarray:
    """`column.isin(texts)` as a numpy mask (missing is not in)."""
    arrow = arrow_strings(column)
    if arrow is None:
        return pd.Series(column, copy=False).isin(texts).to_numpy(dtype=bool)
    return np.asarray(pc.is_in(arrow, value_set=_arrow_set(texts, arrow.type)), dtype=bool)


def text_fullmatch(column: pd.Series | ColumnArray, pattern: str) -> np.ndarray:
    """`column.str.fullmatch(pattern)` as a numpy mask (missing does not match).

    An Arrow-backed column is matched by RE2, as pandas matches it for a pattern without \\s, \\d,
    \\w, \\b, $ or lookarounds (which it hands to Python's re), less pandas' re-parse of the pattern on
    every call (~0.15 ms).
    """
    arrow = arrow_strings(column)
    if arrow is None:
        return pd.Series(column, copy=False).str.fullmatch(pattern).to_numpy(dtype=bool, na_value=False)
    return pc.fill_null(pc.match_substring_regex(arrow, options=_anchored(pattern)), _FALSE).to_numpy()


def arrow_strings(column: pd.Series | ColumnArray) -> pyarrow.ChunkedArray | None:
    """The Arrow array behind a pyarrow-backed string column (canonical "str"), else None.

    pandas runs its `.str` methods, comparisons and isin on such a column with Arrow's kernels;
    calling them directly gives the same values without pandas' fixed cost per call (~0.05 ms),
    which is most of the work on one applicant's handful of rows.
    """
    values = column.array if isinstance(column, pd.Series) else column
    if isinstance(values, ExtensionArray) and isinstance(values.dtype, pd.StringDtype) \
            and values.dtype.storage == "pyarrow":
        return values.__arrow_array__()
    return None


# Made once: converting a Python value costs each kernel call ~0.01 ms.
_FALSE = pyarrow.scalar(False)


@functools.lru_cache(maxsize=1024)
def _arrow_scalar(text: str, arrow_type: pyarrow.DataType) -> pyarrow.Scalar:
    return pyarrow.scalar(text, type=arrow_type)


@functools.lru_cache(maxsize=256)
def _arrow_set(texts: tuple[str, ...], arrow_type: pyarrow.DataType) -> pyarrow.Array:
    return pyarrow.array(texts, type=arrow_type)


@functools.lru_cache(maxsize=64)
def _anchored(pattern: str) -> pc.MatchSubstringOptions:
    return pc.MatchSubstringOptions(f"^(?:{pattern})$")  # what fullmatch anchors it to


def text_blank(text: pd.Series | ColumnArray) -> np.ndarray:
    """Where a string is empty or only whitespace (`text.str.strip() == ""`; missing is not blank)."""
    arrow = arrow_strings(text)
    if arrow is None:
        return (pd.Series(text, copy=False).str.strip() == "").to_numpy(dtype=bool, na_value=False)
    blank = pc.equal(pc.utf8_trim_whitespace(arrow), _arrow_scalar("", arrow.type))
    if not pc.any(blank).as_py():
        return np.zeros(len(text), dtype=bool)
    return pc.fill_null(blank, _FALSE).to_numpy()

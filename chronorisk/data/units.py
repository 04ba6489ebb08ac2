"""Conversions applied at the raw-data contract, so every later stage sees one dtype and one unit.

Labs and clinics report in their own units (HbA1c in % or IFCC mmol/mol, glucose and lipids in
mmol/L or mg/dL, body measures in lb/in) and files carry loosely typed text (CSV); converting
once, here, keeps the feature code unit- and format-free. Factors are the conventional clinical
ones; each conversion has its exact inverse so round trips hold.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pandas.api.extensions import ExtensionArray

from chronorisk.data.text_columns import ColumnArray, arrow_strings, text_blank, text_equals, text_fullmatch, text_in

__all__ = [
    "CANONICAL_DTYPES",
    "CANONICAL_UNIT",
    "CHOLESTEROL_MG_DL_PER_MMOL_L",
    "DATE_DTYPE",
    "GLUCOSE_MG_DL_PER_MMOL_L",
    "IN_TO_CM",
    "LAB_CATALOGUE",
    "LAB_UNITS",
    "LB_TO_KG",
    "TRIGLYCERIDES_MG_DL_PER_MMOL_L",
    "UNIT_ALTERNATIVES",
    "ColumnArray",
    "LabTest",
    "canonical_labs",
    "cm_to_in",
    "has_default_index",
    "hba1c_mmol_mol_to_pct",
    "hba1c_pct_to_mmol_mol",
    "in_to_cm",
    "kg_to_lb",
    "lb_to_kg",
    "mg_dl_to_mmol_l",
    "missing_column",
    "missing_values",
    "mmol_l_to_mg_dl",
    "normalize_unit",
    "parse_column",
    "parse_float",
    "parse_values",
    "read_raw_file",
    "text_equals",
    "text_fullmatch",
    "text_in",
]

X = TypeVar("X", float, np.ndarray, pd.Series)

LB_TO_KG = 0.45359237  # exact, by the 1959 international yard and pound agreement
IN_TO_CM = 2.54  # exact, same agreement
GLUCOSE_MG_DL_PER_MMOL_L = 18.016
YEAR_DAYS = 365.25  # the mean Julian year, the one day-to-year conversion of every layer
CHOLESTEROL_MG_DL_PER_MMOL_L = 38.67
TRIGLYCERIDES_MG_DL_PER_MMOL_L = 88.57
# IFCC-NGSP master equation: mmol/mol = 10.929 × (% − 2.15)
HBA1C_IFCC_SLOPE = 10.929
HBA1C_IFCC_OFFSET_PCT = 2.15

MG_DL_PER_MMOL_L = {
    "fasting_glucose": GLUCOSE_MG_DL_PER_MMOL_L,
    "ogtt_2h_glucose": GLUCOSE_MG_DL_PER_MMOL_L,  # plasma glucose 2 hours into a 75 g oral glucose tolerance test
    "total_cholesterol": CHOLESTEROL_MG_DL_PER_MMOL_L,
    "ldl": CHOLESTEROL_MG_DL_PER_MMOL_L,
    "hdl": CHOLESTEROL_MG_DL_PER_MMOL_L,
    "triglycerides": TRIGLYCERIDES_MG_DL_PER_MMOL_L,
}


def lb_to_kg(pounds: X) -> X:
    return pounds * LB_TO_KG


def kg_to_lb(kilograms: X) -> X:
    return kilograms / LB_TO_KG


def in_to_cm(inches: X) -> X:
    return inches * IN_TO_CM


def cm_to_in(centimetres: X) -> X:
    return centimetres / IN_TO_CM


def hba1c_mmol_mol_to_pct(mmol_mol: X) -> X:
    return mmol_mol / HBA1C_IFCC_SLOPE + HBA1C_IFCC_OFFSET_PCT


def hba1c_pct_to_mmol_mol(pct: X) -> X:
    return (pct - HBA1C_IFCC_OFFSET_PCT) * HBA1C_IFCC_SLOPE


def mg_dl_to_mmol_l(mg_dl: X, test: str) -> X:
    """Mass to molar concentration; the factor is the analyte's molar mass / 10, so it needs the test."""
    return mg_dl / MG_DL_PER_MMOL_L[test]


def mmol_l_to_mg_dl(mmol_l: X, test: str) -> X:
    return mmol_l * MG_DL_PER_MMOL_L[test]


def normalize_unit(unit: str) -> str:
    """The matching key of a unit string: labs write "mmol/L", "MMOL/L " and "mmol/l" for one unit."""
    return unit.strip().lower()


def _identity(values: np.ndarray) -> np.ndarray:
    return values


def _from_mg_dl(test: str) -> Callable[[np.ndarray], np.ndarray]:
    return lambda values: mg_dl_to_mmol_l(values, test)


@dataclass(frozen=True)
class LabTest:
    """One lab test of the catalogue: the unit features use, the units an input may carry (with the
    conversion of their values to the canonical unit, matched after normalize_unit), and the range a
    value in the canonical unit must fall in to be plausible (the contracts' out_of_range rule)."""

    canonical_unit: str
    units: dict[str, Callable[[np.ndarray], np.ndarray]]
    plausible: tuple[float, float]


def _mmol_l(test: str, plausible: tuple[float, float]) -> LabTest:
    return LabTest("mmol/L", {"mmol/L": _identity, "mg/dL": _from_mg_dl(test)}, plausible)


# The one lab-test catalogue: the contracts, the mapping check, the request schema and the product
# specs' lab names all derive from it; a new test is one line here (and its features).
LAB_CATALOGUE: dict[str, LabTest] = {
    "hba1c": LabTest("%", {"%": _identity, "mmol/mol": hba1c_mmol_mol_to_pct}, (3, 20)),
    "fasting_glucose": _mmol_l("fasting_glucose", (1.5, 40)),
    "ogtt_2h_glucose": _mmol_l("ogtt_2h_glucose", (1.5, 50)),
    "total_cholesterol": _mmol_l("total_cholesterol", (1, 20)),
    "ldl": _mmol_l("ldl", (0.2, 15)),
    "hdl": _mmol_l("hdl", (0.1, 5)),
    "triglycerides": _mmol_l("triglycerides", (0.1, 50)),
    "egfr": LabTest("mL/min/1.73m2", {"mL/min/1.73m2": _identity}, (1, 200)),
}
CANONICAL_UNIT: dict[str, str] = {test: lab.canonical_unit for test, lab in LAB_CATALOGUE.items()}
LAB_UNITS: dict[str, dict[str, Callable[[np.ndarray], np.ndarray]]] = {
    test: lab.units for test, lab in LAB_CATALOGUE.items()}

# canonical column -> (alternative column an input may carry instead, conversion to the canonical unit)
UNIT_ALTERNATIVES: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    "weight_kg": ("weight_lb", lb_to_kg),
    "height_cm": ("height_in", in_to_cm),
    "waist_cm": ("waist_in", in_to_cm),
}


def canonical_labs(test: pd.Series | ExtensionArray, value: np.ndarray, unit: pd.Series | ExtensionArray,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Long-format lab values in canonical units.

    Returns (values, unit strings, convertible mask). A row whose test is known but whose unit is
    not an accepted unit of that test is not convertible: its value and unit come back unchanged,
    for the caller to reject. Rows of unknown tests are left alone (they break a different rule).
    Tests and normalised units are factorised once; each (test, unit) pair is then one integer
    comparison over the rows, never a loop per row.
    """
    values = np.asarray(value, dtype="float64").copy()
    units = unit.to_numpy(dtype=object, na_value=None).copy()
    test_codes, test_names = pd.factorize(test)
    unit_codes, unit_keys = pd.factorize(_normalized_units(unit))
    test_at = {name: i for i, name in enumerate(test_names)}
    unit_at = {key: i for i, key in enumerate(unit_keys)}
    convertible = np.zeros(len(values), dtype=bool)
    for name, accepted in LAB_UNITS.items():
        if name not in test_at:
            continue
        is_test = test_codes == test_at[name]
        for accepted_unit, convert in accepted.items():
            key = normalize_unit(accepted_unit)
            if key not in unit_at:
                continue
            sel = is_test & (unit_codes == unit_at[key])
            if sel.any():
                values[sel] = convert(values[sel])
                units[sel] = CANONICAL_UNIT[name]
                convertible |= sel
    return values, units, convertible


def _normalized_units(unit: pd.Series | ExtensionArray) -> pd.Series | np.ndarray:
    """normalize_unit of every unit string, missing staying missing (what `.str.strip().str.lower()` gives)."""
    arrow = arrow_strings(unit)
    if arrow is None:
        return pd.Series(unit).str.strip().str.lower()
    return pc.utf8_lower(pc.utf8_trim_whitespace(arrow)).to_numpy()


# --- raw values of any input dtype to the canonical dtype of their kind

DATE_DTYPE = "datetime64[s]"
CANONICAL_DTYPES = {"str": "str", "codes": "str", "date": DATE_DTYPE, "float": "float64", "int": "Int64",
                    "bool": "boolean"}
TRUE, FALSE = ("true", "t", "yes", "y", "1", "1.0"), ("false", "f", "no", "n", "0", "0.0")
_FEW_DATES = 64  # up to this many python date objects are converted without pd.to_datetime's fixed cost


def parse_float(s: pd.Series | ColumnArray) -> tuple[np.ndarray, np.ndarray]:
    """float64 values (not sharing s's memory) and the rows that held something other than a number (CSV text, typos)."""
    dtype = s.dtype
    if (dtype.kind in "iuf" if isinstance(dtype, np.dtype) else  # the usual case, without pandas' dtype checks
            pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)):
        if isinstance(s, np.ndarray):  # a table's column
            return s.astype("float64"), np.zeros(len(s), dtype=bool)
        return _own(s.to_numpy(dtype="float64", na_value=np.nan)), np.zeros(len(s), dtype=bool)
    values = pd.to_numeric(_series(s), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return values, _present(s) & np.isnan(values)


def _series(s: pd.Series | ColumnArray) -> pd.Series:
    """s as a Series with the default index, for the pandas parsers of text (CSV) and other loose input."""
    if isinstance(s, pd.Series):
        return s if has_default_index(s) else s.reset_index(drop=True)
    return pd.Series(s, copy=False)


def parse_column(s: pd.Series, kind: str, *, blank_is_missing: bool = False) -> tuple[pd.Series, np.ndarray]:
    """A column in the canonical dtype of its kind, and the non-missing rows that could not be read.

    kind is str, codes (a ";"-separated list, "" for none), date (ISO 8601, floored to the day),
    float, int (whole numbers only) or bool (true/false, yes/no, 1/0 in any case). An unreadable
    value becomes missing here and is flagged, so the caller can reject it rather than accept a null.
    """
    values, failed = parse_values(s, kind, blank_is_missing=blank_is_missing)
    return pd.Series(values, name=s.name, copy=False), failed


def parse_values(s: pd.Series | ColumnArray, kind: str, *, blank_is_missing: bool = False
                 ) -> tuple[ColumnArray, np.ndarray]:
    """parse_column's values as an array of the canonical dtype (numpy, or a pandas extension array
    for str, int and bool) that shares nothing with s, and the rows that could not be read.

    s is a frame's column or a table's (chronorisk.data.table): a column already in its canonical
    dtype, as a request's are, is checked and copied without a pandas call."""
    n = len(s)
    if kind == "date":
        return _parse_dates(s)
    if kind in ("float", "int"):
        values, failed = parse_float(s)
        if kind == "float":
            return values, failed
        bad = ~np.isnan(values) & ((values != np.round(values)) | (np.abs(values) > 2.0**53))
        missing = np.isnan(values) | bad
        # what astype("Int64") of the floats gives: what is left is a whole number of at most 2**53
        return pd.arrays.IntegerArray(np.where(missing, 0.0, values).astype("int64"), missing), failed | bad
    dtype = s.dtype
    if kind == "bool":
        if dtype == np.bool_:  # what astype("boolean") gives, without its fixed cost (~0.04 ms)
            return pd.arrays.BooleanArray(np.array(s, dtype=bool), np.zeros(n, dtype=bool)), np.zeros(n, dtype=bool)
        if isinstance(dtype, pd.BooleanDtype):  # canonical already, as a request's answers are
            return (s.array if isinstance(s, pd.Series) else s).copy(), np.zeros(n, dtype=bool)
        if pd.api.types.is_bool_dtype(dtype):
            return _series(s).astype("boolean").array.copy(), np.zeros(n, dtype=bool)
        text = _series(s).astype("str").str.strip().str.lower()
        is_true, is_false = text.isin(TRUE).to_numpy(), text.isin(FALSE).to_numpy()
        return pd.arrays.BooleanArray(is_true, ~(is_true | is_false)), _present(s) & ~(is_true | is_false)
    values = s.array if isinstance(s, pd.Series) else s
    strings: ExtensionArray = values if dtype == "str" and not isinstance(values, np.ndarray) \
        else _series(s).astype("str").array
    if blank_is_missing:
        blank = text_blank(strings)
        if blank.any():
            strings = pd.Series(strings, copy=False).where(~blank).array
    if kind == "codes" and strings.isna().any():
        strings = strings.fillna("")
    return strings.copy(), np.zeros(n, dtype=bool)  # an Arrow array's copy shares its immutable buffers


def has_default_index(frame: pd.Series | pd.DataFrame) -> bool:
    """Whether the index is already 0..n-1, so that reset_index(drop=True) would change nothing."""
    index = frame.index
    return type(index) is pd.RangeIndex and index.start == 0 and index.step == 1


def _own(values: np.ndarray) -> np.ndarray:
    """values, copied unless to_numpy made them: where it does not copy, pandas hands out a read-only view."""
    return values if values.flags.owndata and values.flags.writeable else values.copy()


@functools.cache
def _earliest_floorable(dtype: np.dtype) -> int:
    """The earliest instant (int64 ticks) of a datetime64 dtype whose day numpy floors without wrapping round."""
    ticks_per_day = np.timedelta64(1, "D").astype(f"timedelta64[{np.datetime_data(dtype)[0]}]").astype(np.int64)
    return int(np.iinfo(np.int64).min + ticks_per_day)


def _parse_dates(s: pd.Series | ColumnArray) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = _series(s).dt.tz_localize(None)
    values = s.array if isinstance(s, pd.Series) else s
    if isinstance(s.dtype, np.dtype) and s.dtype.kind == "M":  # is_datetime64_dtype, without its fixed cost
        dates, failed = np.asarray(values), None
    elif s.dtype == object and len(s) <= _FEW_DATES and set(map(type, np.asarray(values))) <= {date, type(None)}:
        # a request's few python dates, converted as pd.to_datetime converts them, without its fixed cost
        dates, failed = np.asarray(values).astype(DATE_DTYPE), None
    else:
        series = _series(s)
        dates = pd.to_datetime(series if series.dtype == object else series.astype("str"), format="ISO8601",
                               errors="coerce").to_numpy()
        failed = _present(s) & np.isnat(dates)
    ticks = dates.view("int64")
    if len(ticks) and ticks.min() < _earliest_floorable(dates.dtype) and \
            (ticks[~np.isnat(dates)] < _earliest_floorable(dates.dtype)).any():
        # numpy's floor would wrap round within a day of the earliest instant; pandas raises there
        floored = pd.Series(dates).dt.floor("D").astype(DATE_DTYPE).to_numpy(copy=True)
    else:  # the days .dt.floor("D") gives (towards the past, NaT kept), without pandas' fixed cost
        floored = dates.astype("datetime64[D]").astype(DATE_DTYPE)
    return floored, np.zeros(len(s), dtype=bool) if failed is None else failed


def _present(s: pd.Series | ColumnArray) -> np.ndarray:
    """s.notna() as a numpy mask, asked of the array itself (the Series method costs ~0.02 ms more)."""
    values = s.array if isinstance(s, pd.Series) else s
    return ~np.asarray(pd.isna(values) if isinstance(values, np.ndarray) else values.isna(), dtype=bool)


def missing_column(kind: str, n: int) -> pd.Series:
    """An all-missing column of the canonical dtype, for an optional column or table that is absent."""
    return pd.Series(missing_values(kind, n), copy=False)


def missing_values(kind: str, n: int) -> ColumnArray:
    """missing_column's values as an array of its own."""
    if kind == "int":
        return pd.arrays.IntegerArray(np.zeros(n, dtype="int64"), np.ones(n, dtype=bool))
    if kind == "bool":
        return pd.arrays.BooleanArray(np.zeros(n, dtype=bool), np.ones(n, dtype=bool))
    if kind == "date":
        return np.full(n, np.datetime64("NaT"), dtype=DATE_DTYPE)
    if kind == "float":
        return np.full(n, np.nan)
    return pd.Series(np.full(n, np.nan), dtype="str").fillna("" if kind == "codes" else np.nan).array


_ARROW_TO_PANDAS = {pyarrow.int64(): pd.Int64Dtype(), pyarrow.int32(): pd.Int64Dtype(),
                    pyarrow.bool_(): pd.BooleanDtype()}


def read_raw_file(path: Path, *, table: pyarrow.Table | None = None) -> pd.DataFrame:
    """A raw parquet or CSV file as loosely typed columns, for parse_column to read strictly.

    CSV columns all come in as text, so a stray letter in a number column costs one rejected row
    instead of failing the whole read; quoted empty strings stay "" (an empty code list), bare
    empty fields are missing. Parquet keeps its types, with nullable ints and booleans. `table`
    is an Arrow table already read from path (e.g. one filtered member range), converted alike.
    """
    if table is not None or path.suffix == ".parquet":
        arrow = table if table is not None else pq.read_table(path)
        return arrow.to_pandas(types_mapper=_ARROW_TO_PANDAS.get, date_as_object=False)
    with path.open(newline="", encoding="utf-8-sig") as f:
        header = next(csv.reader(f), [])
    options = pacsv.ConvertOptions(column_types=dict.fromkeys(header, pyarrow.string()),
                                   strings_can_be_null=True, quoted_strings_can_be_null=False)
    return pacsv.read_csv(path, convert_options=options).to_pandas()

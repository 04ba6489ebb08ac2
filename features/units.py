"""Conversions applied at the raw-data contract, so every later stage sees one dtype and one unit.

Labs and clinics report in their own units (HbA1c in % or IFCC mmol/mol, glucose and lipids in
mmol/L or mg/dL, body measures in lb/in) and files carry loosely typed text (CSV); converting
once, here, keeps the feature code unit- and format-free. Factors are the conventional clinical
ones; each conversion has its exact inverse so round trips hold.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

__all__ = [
    "CANONICAL_DTYPES",
    "CANONICAL_UNIT",
    "CHOLESTEROL_MG_DL_PER_MMOL_L",
    "DATE_DTYPE",
    "GLUCOSE_MG_DL_PER_MMOL_L",
    "IN_TO_CM",
    "LAB_UNITS",
    "LB_TO_KG",
    "TRIGLYCERIDES_MG_DL_PER_MMOL_L",
    "UNIT_ALTERNATIVES",
    "canonical_labs",
    "cm_to_in",
    "hba1c_mmol_mol_to_pct",
    "hba1c_pct_to_mmol_mol",
    "in_to_cm",
    "kg_to_lb",
    "lb_to_kg",
    "mg_dl_to_mmol_l",
    "missing_column",
    "mmol_l_to_mg_dl",
    "normalize_unit",
    "parse_column",
    "parse_float",
    "read_raw_file",
]

X = TypeVar("X", float, np.ndarray, pd.Series)

LB_TO_KG = 0.45359237  # exact, by the 1959 international yard and pound agreement
IN_TO_CM = 2.54  # exact, same agreement
GLUCOSE_MG_DL_PER_MMOL_L = 18.016
CHOLESTEROL_MG_DL_PER_MMOL_L = 38.67
TRIGLYCERIDES_MG_DL_PER_MMOL_L = 88.57
# IFCC-NGSP master equation: mmol/mol = 10.929 × (% − 2.15)
HBA1C_IFCC_SLOPE = 10.929
HBA1C_IFCC_OFFSET_PCT = 2.15

MG_DL_PER_MMOL_L = {
    "fasting_glucose": GLUCOSE_MG_DL_PER_MMOL_L,
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


CANONICAL_UNIT: dict[str, str] = {
    "hba1c": "%",
    "fasting_glucose": "mmol/L",
    "total_cholesterol": "mmol/L",
    "ldl": "mmol/L",
    "hdl": "mmol/L",
    "triglycerides": "mmol/L",
    "egfr": "mL/min/1.73m2",
}

# test -> accepted unit (matched after normalize_unit) -> conversion of its values to the canonical unit
LAB_UNITS: dict[str, dict[str, Callable[[np.ndarray], np.ndarray]]] = {
    "hba1c": {"%": _identity, "mmol/mol": hba1c_mmol_mol_to_pct},
    **{test: {"mmol/L": _identity, "mg/dL": _from_mg_dl(test)} for test in MG_DL_PER_MMOL_L},
    "egfr": {"mL/min/1.73m2": _identity},
}

# canonical column -> (alternative column an input may carry instead, conversion to the canonical unit)
UNIT_ALTERNATIVES: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    "weight_kg": ("weight_lb", lb_to_kg),
    "height_cm": ("height_in", in_to_cm),
    "waist_cm": ("waist_in", in_to_cm),
}


def canonical_labs(test: pd.Series, value: np.ndarray, unit: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Long-format lab values in canonical units.

    Returns (values, unit strings, convertible mask). A row whose test is known but whose unit is
    not an accepted unit of that test is not convertible: its value and unit come back unchanged,
    for the caller to reject. Rows of unknown tests are left alone (they break a different rule).
    One vectorised pass per (test, unit) pair, never per row.
    """
    values = np.asarray(value, dtype="float64").copy()
    units = unit.to_numpy(dtype=object, na_value=None).copy()
    key = unit.str.strip().str.lower()
    test_arr = test.to_numpy(dtype=object, na_value=None)
    convertible = np.zeros(len(values), dtype=bool)
    for name, accepted in LAB_UNITS.items():
        is_test = test_arr == name
        if not is_test.any():
            continue
        for accepted_unit, convert in accepted.items():
            sel = is_test & (key == normalize_unit(accepted_unit)).fillna(False).to_numpy(dtype=bool)
            if sel.any():
                values[sel] = convert(values[sel])
                units[sel] = CANONICAL_UNIT[name]
                convertible |= sel
    return values, units, convertible


# --- raw values of any input dtype to the canonical dtype of their kind

DATE_DTYPE = "datetime64[s]"
CANONICAL_DTYPES = {"str": "str", "codes": "str", "date": DATE_DTYPE, "float": "float64", "int": "Int64",
                    "bool": "boolean"}
TRUE, FALSE = ("true", "t", "yes", "y", "1", "1.0"), ("false", "f", "no", "n", "0", "0.0")


def parse_float(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """float64 values and the rows that held something other than a number (CSV text, typos)."""
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return s.to_numpy(dtype="float64", na_value=np.nan), np.zeros(len(s), dtype=bool)
    values = pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return values, s.notna().to_numpy() & np.isnan(values)


def parse_column(s: pd.Series, kind: str, *, blank_is_missing: bool = False) -> tuple[pd.Series, np.ndarray]:
    """A column in the canonical dtype of its kind, and the non-missing rows that could not be read.

    kind is str, codes (a ";"-separated list, "" for none), date (ISO 8601, floored to the day),
    float, int (whole numbers only) or bool (true/false, yes/no, 1/0 in any case). An unreadable
    value becomes missing here and is flagged, so the caller can reject it rather than accept a null.
    """
    n = len(s)
    s = s.reset_index(drop=True)
    if kind == "date":
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            s = s.dt.tz_localize(None)
        dates = s if pd.api.types.is_datetime64_dtype(s) else pd.to_datetime(
            s if s.dtype == object else s.astype("str"), format="ISO8601", errors="coerce")
        dates = dates.dt.floor("D").astype(DATE_DTYPE)
        return dates, s.notna().to_numpy() & dates.isna().to_numpy()
    if kind in ("float", "int"):
        values, failed = parse_float(s)
        if kind == "float":
            return pd.Series(values), failed
        bad = ~np.isnan(values) & ((values != np.round(values)) | (np.abs(values) > 2.0**53))
        values = np.where(bad, np.nan, values)
        return pd.Series(values).astype("Int64"), failed | bad
    if kind == "bool":
        if pd.api.types.is_bool_dtype(s):
            return s.astype("boolean"), np.zeros(n, dtype=bool)
        text = s.astype("str").str.strip().str.lower()
        is_true, is_false = text.isin(TRUE).to_numpy(), text.isin(FALSE).to_numpy()
        parsed = pd.Series(pd.arrays.BooleanArray(is_true, ~(is_true | is_false)))
        return parsed, s.notna().to_numpy() & ~(is_true | is_false)
    text = s if s.dtype == "str" else s.astype("str")
    if blank_is_missing:
        text = text.where(text.str.strip() != "")
    if kind == "codes":
        text = text.fillna("")
    return text, np.zeros(n, dtype=bool)


def missing_column(kind: str, n: int) -> pd.Series:
    """An all-missing column of the canonical dtype, for an optional column or table that is absent."""
    if kind == "int":
        return pd.Series(pd.arrays.IntegerArray(np.zeros(n, dtype="int64"), np.ones(n, dtype=bool)))
    if kind == "bool":
        return pd.Series(pd.arrays.BooleanArray(np.zeros(n, dtype=bool), np.ones(n, dtype=bool)))
    if kind == "date":
        return pd.Series(np.full(n, np.datetime64("NaT"), dtype=DATE_DTYPE))
    if kind == "float":
        return pd.Series(np.full(n, np.nan))
    return pd.Series(np.full(n, np.nan), dtype="str").fillna("" if kind == "codes" else np.nan)


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

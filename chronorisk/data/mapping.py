"""The mapping file: how an insurer's own extract maps onto our raw-data contracts (design decision 19).

An extract keeps its own table and column names, units, code lists and date format; the mapping
says which is which, as validated data (`extra="forbid"`: a typo is an error naming the key),
so taking a new insurer's data needs a YAML file, not code. Units are only *named* here: the
contracts convert them (`chronorisk/data/units.py`), exactly as for any other raw folder.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chronorisk.data.contracts import CONTRACTS, TABLES
from chronorisk.data.declaration import AS_RECORDED, FeatureSpec
from chronorisk.data.units import CANONICAL_UNIT, LAB_UNITS, UNIT_ALTERNATIVES

# canonical column -> accepted unit -> the column name the contracts read that unit from
COLUMN_UNITS: dict[str, dict[str, str]] = {
    name: {name.rsplit("_", 1)[1]: name, alt.rsplit("_", 1)[1]: alt} for name, (alt, _) in UNIT_ALTERNATIVES.items()}
AGE_UNIT = "years"  # birth_date given as age at the index date (flat extracts)
CUSTOM_NAME = r"^[a-z][a-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    path: Path = Field(description="the extract: a file (flat) or a folder of table files (relational); "
                                   "relative paths are read from the mapping file's folder")
    format: Literal["csv", "parquet"] | None = Field(None, description="default: from the file suffix")
    date_format: str | None = Field(None, description="strftime format of every date column, e.g. %d/%m/%Y; "
                                                      "default ISO 8601")


class ColumnMap(_Strict):
    """Where one contract column comes from: an extract column (with its unit and code list) or a constant."""

    column: str | None = Field(None, description="the extract's column name")
    value: str | float | bool | None = Field(None, description="a constant instead of a column")
    unit: str | None = Field(None, description="the column's unit when it is not the contract's (lb, in, mg/dL)")
    codes: dict[str, str] = Field(default_factory=dict, description="extract code -> contract code; others "
                                                                    "pass through (and break the contract)")
    missing: list[str | float] = Field(default_factory=list, description="values the extract writes for 'not "
                                                                         "recorded' (e.g. 0 for a blood pressure "
                                                                         "never taken); read as missing")
    national_extension: bool = Field(False, description="icd10_codes only: the extract extends WHO codes by digits "
                                                        "(China's E11.900): each such code becomes the WHO code it "
                                                        "refines (chronorisk/data/codes.py); other codes are judged as given")

    @model_validator(mode="after")
    def _one_source(self) -> ColumnMap:
        if (self.column is None) == (self.value is None):
            raise ValueError("give exactly one of column or value")
        return self


class TableMap(_Strict):
    file: str | None = Field(None, description="relational: the table's file name in the source folder")
    columns: dict[str, ColumnMap] = Field(default_factory=dict)


class GeneratedIds(_Strict):
    """Member ids numbered by the import, for an extract without an id column: PREFIX + the row's
    position in the file (0-based, as the quarantine files' source_row)."""

    generate: Literal["row_number"]
    prefix: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]*$", description="default: the source file's "
                                                                               "name without suffix, then '-'")


class IndexDate(_Strict):
    """A flat row's application date: its own column, or one date for every row. The model scores
    as of the day after (decision 2), so measurements taken at application are used."""

    column: str | None = None
    fixed: date | None = None

    @model_validator(mode="after")
    def _one_source(self) -> IndexDate:
        if (self.column is None) == (self.fixed is None):
            raise ValueError("give exactly one of column or fixed")
        return self


class Outcome(_Strict):
    column: str = Field(description="the extract's outcome column")
    timing: Literal["incident", "current"] | None = Field(
        None, description="incident: the disease began after the application, within a follow-up; current: "
        "the disease as found at the application (screening). A product checks it against its outcome_timing")
    positive: list[str | int | float | bool] = Field(min_length=1, description="values that mean the outcome "
                                                                                "happened; anything else is negative")


class CustomFeature(_Strict):
    """A measurement our registry does not know; it becomes a feature like any built-in one."""

    column: str = Field(description="the extract's column holding the measurement")
    unit: str = Field(description="the measurement's unit, as shown in reasons (no conversion)")
    description: str
    direction: Literal[-1, 0, 1] = Field(description="expected effect on risk; the default monotone constraint")
    reason: str = Field(description="plain-language reason text with a {value} placeholder")
    range: tuple[float, float] | None = Field(None, description="plausible values (inclusive); others are "
                                                                 "quarantined as out_of_range")
    decimals: int | None = Field(None, ge=0, le=6, description="decimals shown in reasons (default: as recorded, "
                                                               "up to four)")

    @field_validator("reason")
    @classmethod
    def _placeholder(cls, v: str) -> str:
        if "{value}" not in v:
            raise ValueError("reason text needs a {value} placeholder for the measured value")
        return v

    def spec(self, name: str) -> FeatureSpec:
        fmt = AS_RECORDED if self.decimals is None else f"{{:,.{self.decimals}f}}"
        return FeatureSpec(name, "custom", self.unit, self.description, self.direction, self.reason, fmt=fmt)


class ExtractMapping(_Strict):
    kind: Literal["flat", "relational"]
    source: Source
    extract_date: date | None = Field(None, description="latest valid record date (default: the latest date "
                                                        "found in the extract)")
    tables: dict[str, TableMap]
    member_id: str | GeneratedIds | None = Field(None, description="flat: the column identifying the applicant, "
                                                                   "or {generate: row_number} to number the rows")
    index_date: IndexDate | None = Field(None, description="flat: the application date")
    outcome: Outcome | None = Field(None, description="flat: the outcome column, if the extract carries one")
    custom_features: dict[str, CustomFeature] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> ExtractMapping:
        unknown = sorted(set(self.tables) - set(TABLES))
        if unknown:
            raise ValueError(f"tables: unknown contract tables {unknown}; known: {', '.join(TABLES)}")
        if self.kind == "flat" and "wearable_daily" in self.tables:
            raise ValueError("tables.wearable_daily: a flat extract has one row per applicant, not daily device "
                             "records; map an examination's pulse to consultations.heart_rate_bpm, or import the "
                             "device days as a relational extract")
        if "members" not in self.tables:
            raise ValueError("tables.members: required (the contracts need a member row for every member)")
        for table, tmap in self.tables.items():
            allowed = set(CANONICAL_UNIT) if (table == "lab_results" and self.kind == "flat") else \
                set(CONTRACTS[table].columns)
            for col, cmap in tmap.columns.items():
                where = f"tables.{table}.columns.{col}"
                if col not in allowed:
                    known = ", ".join(sorted(allowed))
                    raise ValueError(f"{where}: not a column of the {table} contract; known: {known}")
                _check_unit(where, table, col, cmap, self.kind)
                if table != "lab_results" or self.kind != "flat":
                    _check_constant(where, table, col, cmap)
            if self.kind == "flat" and table != "lab_results":  # flat labs: one column per test
                _check_flat_columns(table, tmap)
            if self.kind == "relational" and tmap.file is None:
                raise ValueError(f"tables.{table}.file: a relational extract names each table's file")
            if self.kind == "flat" and tmap.file is not None:
                raise ValueError(f"tables.{table}.file: a flat extract is one file (source.path)")
        for name in self.custom_features:
            if not re.match(CUSTOM_NAME, name):
                raise ValueError(f"custom_features.{name}: names are lower_snake_case")
        if self.kind == "flat":
            if self.member_id is None or self.index_date is None:
                raise ValueError("a flat extract needs member_id and index_date")
            if "member_id" in self.tables["members"].columns:
                raise ValueError("tables.members.columns.member_id: a flat extract names it once, in member_id")
        else:
            if self.member_id or self.index_date or self.outcome:
                raise ValueError("member_id, index_date and outcome are for flat extracts; a relational "
                                 "extract maps member_id per table and has its outcomes in the records")
            if self.custom_features:
                raise ValueError("custom_features: supported for flat extracts only")
        return self

    def custom_specs(self) -> list[FeatureSpec]:
        return [f.spec(name) for name, f in self.custom_features.items()]


# Contract columns a flat import fills itself: every record is dated the application date, and the
# member's id is named once, in `member_id`.
FLAT_FILLED = {"members": ("member_id",), "applications": ("member_id", "application_date"),
               "consultations": ("consultation_id", "member_id", "date")}


def _check_flat_columns(table: str, tmap: TableMap) -> None:
    for col in FLAT_FILLED.get(table, ()):
        if col in tmap.columns:
            raise ValueError(f"tables.{table}.columns.{col}: a flat extract fills it itself (member_id names the "
                             "applicant; every record is dated the application date, index_date)")
    contract = CONTRACTS[table]
    filled = {*FLAT_FILLED.get(table, ()), *(("enrollment_start",) if table == "members" else ()),
              *(("channel",) if table == "consultations" else ())}
    for col, spec in contract.columns.items():
        if spec.nullable or spec.key or col in filled or col in tmap.columns:
            continue
        raise ValueError(f"tables.{table}.columns.{col}: required by the {table} contract; map a column "
                         f"({{column: NAME}}) or give a constant ({{value: ...}}); {allowed_values(table, col)}")


def allowed_values(table: str, col: str) -> str:
    """What a contract column accepts, in words: its codes, or its kind and range."""
    spec = CONTRACTS[table].columns[col]
    if spec.codes:
        return f"allowed codes: {', '.join(spec.codes)}"
    if spec.kind == "bool":
        return "allowed: true or false"
    if spec.range:
        return f"allowed: {spec.kind} {spec.range[0]:g} to {spec.range[1]:g} {spec.range[2]}"
    return f"allowed: a {spec.kind}" + (" (ISO date, or in source.date_format)" if spec.kind == "date" else "")


def _check_constant(where: str, table: str, col: str, cmap: ColumnMap) -> None:
    """A constant, or a code the mapping translates to, must be one the contract accepts."""
    spec = CONTRACTS[table].columns[col]
    targets = list(cmap.codes.values()) + ([str(cmap.value)] if cmap.value is not None else [])
    if spec.codes:
        bad = sorted({t for t in targets if cmap.codes.get(t, t) not in spec.codes})
        if bad:
            what = "value" if cmap.value is not None and str(cmap.value) in bad else "codes"
            raise ValueError(f"{where}.{what}: {len(bad)} code(s) the {table} contract does not accept; "
                             f"{allowed_values(table, col)}")
    if cmap.value is not None and spec.kind in ("float", "int") and not isinstance(cmap.value, int | float):
        raise ValueError(f"{where}.value: not a number; {allowed_values(table, col)}")
    if cmap.value is not None and spec.kind == "bool" and not isinstance(cmap.value, bool):
        raise ValueError(f"{where}.value: not true or false")


def _check_unit(where: str, table: str, col: str, cmap: ColumnMap, kind: str) -> None:
    if cmap.unit is None:
        return
    if table == "lab_results" and kind == "flat":
        accepted = list(LAB_UNITS[col])
    elif col in COLUMN_UNITS:
        accepted = list(COLUMN_UNITS[col])
    elif col == "birth_date" and kind == "flat":
        accepted = [AGE_UNIT]
    else:
        raise ValueError(f"{where}.unit: {col} has one unit only; drop the unit")
    if cmap.unit.strip().lower() not in {u.lower() for u in accepted}:
        raise ValueError(f"{where}.unit: {cmap.unit!r} is not a unit of {col}; accepted: {', '.join(accepted)}")


def with_source(mapping: ExtractMapping, path: Path) -> ExtractMapping:
    """The mapping reading another file or folder of the same layout (relative to the working directory)."""
    source = mapping.source.model_copy(update={"path": Path(path).resolve()})
    return mapping.model_copy(update={"source": source})


def load_mapping(path: Path) -> ExtractMapping:
    """Load and validate a mapping YAML; errors name the file and the key. Relative source paths
    are resolved against the mapping file's folder."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no mapping file {path}")
    raw = yaml.safe_load(path.read_text())
    try:
        mapping = ExtractMapping.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in err.errors())
        raise ValueError(f"{path}: {problems}") from None
    if not mapping.source.path.is_absolute():
        source = mapping.source.model_copy(update={"path": (path.parent / mapping.source.path).resolve()})
        mapping = mapping.model_copy(update={"source": source})
    return mapping

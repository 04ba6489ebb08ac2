"""`chronorisk import`: an insurer's extract, through its mapping, into a raw folder the contracts read.

Renames tables and columns, translates code lists, parses the extract's date format and names
units (weight in lb becomes `weight_lb`, a glucose in mg/dL gets unit "mg/dL") so that the
contracts, not this module, convert and reject. A flat extract (one row per applicant) becomes
one member, one application, one consultation and its lab results dated the application date,
scored the day after (decision 2), so the same feature code, training and serving path apply.
Only mapped columns are carried: an extract's names, addresses or phone numbers never reach
the raw folder. The folder's `_extract/` holds the mapping, outcomes and custom measurements.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from chronorisk.data.codes import to_who
from chronorisk.data.contracts import CONTRACTS, ValidationReport, load_raw, validate_folder
from chronorisk.data.mapping import AGE_UNIT, COLUMN_UNITS, ColumnMap, ExtractMapping, GeneratedIds, TableMap
from chronorisk.data.measurements import COLUMNS as CUSTOM_COLUMNS
from chronorisk.data.measurements import CUSTOM_TABLE, empty_measurements, validate_measurements
from chronorisk.data.rejections import QUARANTINE_DIR
from chronorisk.data.units import CANONICAL_UNIT, YEAR_DAYS, read_raw_file

EXTRACT_DIR = "_extract"
MAPPING_FILE = "mapping.yaml"
OUTCOMES_FILE = "outcomes.parquet"
CUSTOM_FILE = f"{CUSTOM_TABLE}.parquet"
DUPLICATES_FILE = "duplicates.parquet"  # source_row and the first_row it repeats: positions, no values


@dataclass
class ImportReport:
    kind: str
    rows_read: int
    tables: dict[str, int]
    validation: ValidationReport
    outcomes: int = 0
    positives: int = 0
    no_outcome: int = 0
    custom: dict[str, int] = field(default_factory=dict)  # accepted / rejected custom measurements
    duplicates: int = 0  # flat rows repeating an earlier row's content under another id (kept, reported)


def _read(path: Path, fmt: str | None) -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"extract file {path} not found")
    if fmt is not None and path.suffix.lstrip(".") != fmt:
        raise ValueError(f"{path}: source.format says {fmt}, the file is {path.suffix}")
    return read_raw_file(path)


def _dates(values: pd.Series, date_format: str | None) -> pd.Series:
    """ISO date text; a value the format cannot read is kept as it was, so the contract rejects it
    as invalid_date (with the offending value in the quarantine file) instead of it becoming null."""
    text = values.astype("str")
    parsed = pd.to_datetime(text, format=date_format or "ISO8601", errors="coerce")
    iso = parsed.dt.strftime("%Y-%m-%d")
    return iso.where(parsed.notna(), text).astype("str")


def _column(frame: pd.DataFrame, cmap: ColumnMap, where: str) -> pd.Series:
    if cmap.column is None:
        value = cmap.codes.get(str(cmap.value), cmap.value)
        return pd.Series([value] * len(frame), index=frame.index, dtype=object)
    if cmap.column not in frame.columns:
        raise KeyError(f"{where}: the extract has no column {cmap.column!r}; it has {list(frame.columns)}")
    values = frame[cmap.column]
    if cmap.missing:
        values = values.mask(_is_missing_code(values, cmap.missing))
    if cmap.codes:
        values = values.astype("str").str.strip().replace(cmap.codes).where(values.notna())
    if cmap.national_extension:
        if not where.endswith(".icd10_codes"):
            raise ValueError(f"{where}: national_extension applies to icd10_codes only")
        values = to_who(values)
    return values


def _is_missing_code(values: pd.Series, missing: list[str | float]) -> pd.Series:
    """Where a value is one the extract writes for 'not recorded' (as text, or as a number)."""
    text = values.astype("str").str.strip()
    hit = text.isin([str(m) for m in missing])
    numbers = [float(m) for m in missing if isinstance(m, int | float)]
    if numbers:
        hit |= pd.to_numeric(values, errors="coerce").isin(numbers)
    return hit.fillna(False).astype(bool)


def _table(frame: pd.DataFrame, table: str, tmap: TableMap, date_format: str | None) -> pd.DataFrame:
    """One contract table from an extract frame: mapped columns only, named as the contracts read them."""
    out: dict[str, pd.Series] = {}
    for col, cmap in tmap.columns.items():
        values = _column(frame, cmap, f"tables.{table}.columns.{col}")
        if CONTRACTS[table].columns[col].kind == "date" and cmap.column is not None:
            values = _dates(values, date_format)
        name = COLUMN_UNITS[col][cmap.unit.strip().lower()] if cmap.unit and col in COLUMN_UNITS else col
        out[name] = values
    return pd.DataFrame(out, index=frame.index).reset_index(drop=True)


def relational_tables(mapping: ExtractMapping) -> tuple[dict[str, pd.DataFrame], int]:
    folder = mapping.source.path
    tables: dict[str, pd.DataFrame] = {}
    read = 0
    for table, tmap in mapping.tables.items():
        frame = _read(folder / str(tmap.file), mapping.source.format)
        read += len(frame)
        tables[table] = _table(frame, table, tmap, mapping.source.date_format)
    return tables, read


@dataclass
class FlatParts:
    tables: dict[str, pd.DataFrame]
    outcomes: pd.DataFrame
    custom: pd.DataFrame
    no_outcome: int


def member_ids(mapping: ExtractMapping, frame: pd.DataFrame) -> pd.Series:
    """Each flat row's member id: the extract's id column, or PREFIX + row number when generated."""
    ids = mapping.member_id
    if isinstance(ids, GeneratedIds):
        prefix = ids.prefix if ids.prefix is not None else f"{mapping.source.path.stem}-"
        return pd.Series([f"{prefix}{i}" for i in range(len(frame))], dtype="str")
    assert ids is not None  # the mapping validated this
    if ids not in frame.columns:
        raise KeyError(f"member_id: the extract has no column {ids!r}; give another, or "
                       "member_id: {generate: row_number} to number the rows")
    return frame[ids].astype("str").reset_index(drop=True)


def flat_tables(mapping: ExtractMapping, frame: pd.DataFrame) -> FlatParts:
    """One row per applicant -> member, application, consultation and lab rows on the application date."""
    assert mapping.index_date is not None  # the mapping validated this
    fmt = mapping.source.date_format
    ids = member_ids(mapping, frame)
    idx = mapping.index_date
    if idx.column is not None:
        if idx.column not in frame.columns:
            raise KeyError(f"index_date.column: the extract has no column {idx.column!r}")
        app = _dates(frame[idx.column], fmt).reset_index(drop=True)
    else:
        assert idx.fixed is not None
        app = pd.Series([idx.fixed.isoformat()] * len(frame), dtype="str")
    app_day = pd.to_datetime(app, format="%Y-%m-%d", errors="coerce")
    tables: dict[str, pd.DataFrame] = {}

    members = _table(frame, "members", mapping.tables["members"], fmt)
    birth = mapping.tables["members"].columns.get("birth_date")
    if birth is not None and birth.unit == AGE_UNIT:  # age at application -> a birth date that gives it
        age = pd.to_numeric(members["birth_date"], errors="coerce")
        born = app_day - pd.to_timedelta(np.round(age * YEAR_DAYS), unit="D")
        members["birth_date"] = born.dt.strftime("%Y-%m-%d").where(born.notna(), members["birth_date"].astype("str"))
    members.insert(0, "member_id", ids)
    if "enrollment_start" not in members:
        members["enrollment_start"] = app  # as the service does for an applicant
    if "enrollment_end" not in members:
        members["enrollment_end"] = None
    tables["members"] = members

    if "applications" in mapping.tables:
        apps = _table(frame, "applications", mapping.tables["applications"], fmt)
        apps.insert(0, "member_id", ids)
        apps["application_date"] = app
        tables["applications"] = apps
    if "consultations" in mapping.tables:
        cons = _table(frame, "consultations", mapping.tables["consultations"], fmt)
        cons.insert(0, "member_id", ids)
        cons.insert(0, "consultation_id", ids + "-application")
        cons["date"] = app
        if "channel" not in cons:
            cons["channel"] = "outpatient"
        tables["consultations"] = cons
    if "lab_results" in mapping.tables:
        rows = []
        for test, cmap in mapping.tables["lab_results"].columns.items():
            values = _column(frame, cmap, f"tables.lab_results.columns.{test}").reset_index(drop=True)
            rows.append(pd.DataFrame({"member_id": ids, "date": app, "test": test, "value": values,
                                      "unit": cmap.unit or CANONICAL_UNIT[test]})[values.notna().to_numpy()])
        tables["lab_results"] = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()

    outcomes = pd.DataFrame({"member_id": ids, "index_date": app_day + timedelta(days=1)})
    no_outcome = 0
    if mapping.outcome is not None:
        out = mapping.outcome
        if out.column not in frame.columns:
            raise KeyError(f"outcome.column: the extract has no column {out.column!r}")
        raw = frame[out.column].reset_index(drop=True)
        positive = raw.astype("str").str.strip().isin([str(v) for v in out.positive])
        if pd.api.types.is_numeric_dtype(raw):
            positive |= raw.isin([v for v in out.positive if isinstance(v, int | float)])
        known = raw.notna() & app_day.notna()
        no_outcome = int((~known).sum())
        outcomes = outcomes.assign(label=positive.astype("int8"))[known.to_numpy()].reset_index(drop=True)
    custom = []
    for name, c in mapping.custom_features.items():
        if c.column not in frame.columns:
            raise KeyError(f"custom_features.{name}.column: the extract has no column {c.column!r}")
        custom.append(pd.DataFrame({"member_id": ids, "date": app, "feature": name,
                                    "value": frame[c.column].reset_index(drop=True).astype("str")}))
    custom_frame = pd.concat(custom, ignore_index=True) if custom else empty_measurements()
    custom_frame = custom_frame[custom_frame["value"].notna() & (custom_frame["value"] != "nan")]
    return FlatParts(tables, outcomes, custom_frame.reset_index(drop=True)[CUSTOM_COLUMNS], no_outcome)


def _latest_date(tables: dict[str, pd.DataFrame]) -> date:
    latest: list[pd.Timestamp] = []
    for name, frame in tables.items():
        for col, spec in CONTRACTS[name].columns.items():
            if spec.kind == "date" and col in frame:
                parsed = pd.to_datetime(frame[col].astype("str"), format="ISO8601", errors="coerce")
                if parsed.notna().any():
                    latest.append(parsed.max())
    if not latest:
        raise ValueError("the extract has no readable dates; set extract_date in the mapping")
    return max(latest).date()


def content_columns(mapping: ExtractMapping) -> list[str]:
    """The extract columns a flat mapping reads, bar the member id: a row's content."""
    cols = [c.column for t in mapping.tables.values() for c in t.columns.values() if c.column is not None]
    if mapping.index_date is not None and mapping.index_date.column is not None:
        cols.append(mapping.index_date.column)
    if mapping.outcome is not None:
        cols.append(mapping.outcome.column)
    cols += [c.column for c in mapping.custom_features.values()]
    return list(dict.fromkeys(c for c in cols if c != mapping.member_id))


def duplicate_rows(mapping: ExtractMapping, frame: pd.DataFrame) -> pd.DataFrame:
    """Rows whose content repeats an earlier row's under another id (or under no id at all):
    source_row and the first_row it repeats, 0-based positions in the file. No values."""
    cols = [c for c in content_columns(mapping) if c in frame.columns]
    if not cols or not len(frame):
        return pd.DataFrame({"source_row": pd.Series([], dtype="int64"), "first_row": pd.Series([], dtype="int64")})
    content = frame[cols].astype("str").reset_index(drop=True)
    repeat = content.duplicated(keep="first").to_numpy()
    first = content.groupby(cols, sort=False, dropna=False).ngroup().to_numpy()
    first_row = pd.Series(np.arange(len(content))).groupby(first).transform("min").to_numpy()
    rows = np.flatnonzero(repeat)
    return pd.DataFrame({"source_row": rows.astype("int64"), "first_row": first_row[rows].astype("int64")})


class DuplicateRows(ValueError):
    """Strict mode: the extract repeats rows under other ids."""


def import_extract(mapping: ExtractMapping, mapping_path: Path, out: Path, *, pepper: bytes,
                   strict: bool = False) -> ImportReport:
    """Write OUT as a raw folder (tables, `_manifest.json`, `_extract/`) and validate it through the
    contracts, quarantining bad rows to OUT/_rejected/ as `data validate` does. In strict mode a
    broken rule or a duplicate row fails the import instead.

    Everything is written to a fresh folder beside OUT and renamed to OUT only once the import has
    succeeded: a failed import leaves OUT as it was (absent, or the previous import), never half written.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / EXTRACT_DIR).is_dir():
        raise FileExistsError(f"{out} exists and was not written by `chronorisk import`; choose a new or empty "
                              "folder (an import replaces the whole folder)")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.importing-", dir=out.parent))
    try:
        report = _import_into(mapping, mapping_path, work, pepper=pepper, strict=strict)
        _replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return report


def _replace(new: Path, out: Path) -> None:
    """new takes OUT's place; an earlier import there goes only once the new one is in place."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.replaced-", dir=out.parent))
        os.rename(out, old / out.name)
    os.rename(new, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _import_into(mapping: ExtractMapping, mapping_path: Path, out: Path, *, pepper: bytes,
                 strict: bool) -> ImportReport:
    duplicates = pd.DataFrame()
    if mapping.kind == "flat":
        frame = _read(mapping.source.path, mapping.source.format)
        duplicates = duplicate_rows(mapping, frame)
        if strict and len(duplicates):
            rows = ", ".join(str(r) for r in duplicates["source_row"].head(5))
            raise DuplicateRows(f"{mapping.source.path.name}: {len(duplicates):,} rows repeat an earlier row's content "
                                f"under another id (rule: duplicate_content; source rows {rows}"
                                f"{', ...' if len(duplicates) > 5 else ''}); remove them, or import without --strict "
                                "to keep them and have them reported")
        parts = flat_tables(mapping, frame)
        tables, read = parts.tables, len(frame)
    else:
        tables, read = relational_tables(mapping)
        parts = FlatParts(tables, pd.DataFrame(), empty_measurements(), 0)
    for name, table in tables.items():
        table.to_parquet(out / f"{name}.parquet", index=False)
    extract_date = mapping.extract_date or _latest_date(tables)
    (out / "_manifest.json").write_text(json.dumps({
        "extract_date": extract_date.isoformat(), "source": "import", "kind": mapping.kind,
        "mapping": mapping_path.name, "extract": mapping.source.path.name,
        "custom_features": list(mapping.custom_features)}, indent=2) + "\n")
    extract = out / EXTRACT_DIR
    extract.mkdir()
    shutil.copyfile(mapping_path, extract / MAPPING_FILE)
    if strict:
        validate_folder(out, pepper=pepper, strict=True)
    raw, validation = load_raw(out, pepper=pepper, write_quarantine=True)
    report = ImportReport(mapping.kind, read, {k: len(v) for k, v in tables.items()}, validation,
                          duplicates=len(duplicates))
    if len(duplicates):
        duplicates.to_parquet(extract / DUPLICATES_FILE, index=False)
    if mapping.kind == "flat":
        accepted_ids = pd.Index(raw.members["member_id"].astype("str"))
        outcomes = parts.outcomes[parts.outcomes["member_id"].isin(accepted_ids)] if len(parts.outcomes) \
            else parts.outcomes
        if mapping.outcome is not None:
            outcomes.to_parquet(extract / OUTCOMES_FILE, index=False)
            report.outcomes, report.positives = len(outcomes), int(outcomes["label"].sum())
            report.no_outcome = parts.no_outcome
        parts.custom.to_parquet(extract / CUSTOM_FILE, index=False)
        ranges = {name: c.range for name, c in mapping.custom_features.items()}
        accepted, rejected = validate_measurements(parts.custom, ranges, accepted_ids, pepper)
        report.custom = {"read": len(parts.custom), "accepted": len(accepted), "rejected": len(rejected)}
        if len(rejected):
            (out / QUARANTINE_DIR).mkdir(exist_ok=True)
            rejected.to_parquet(out / QUARANTINE_DIR / CUSTOM_FILE, index=False)
    return report


def read_imported(data_dir: Path) -> tuple[ExtractMapping, pd.DataFrame | None, pd.DataFrame]:
    """An imported folder's mapping, outcomes (None without an outcome column) and raw custom measurements."""
    extract = Path(data_dir) / EXTRACT_DIR
    if not (extract / MAPPING_FILE).exists():
        raise FileNotFoundError(f"{data_dir} was not written by `chronorisk import` (no {EXTRACT_DIR}/{MAPPING_FILE})")
    mapping = ExtractMapping.model_validate(yaml.safe_load((extract / MAPPING_FILE).read_text()))
    outcomes = pd.read_parquet(extract / OUTCOMES_FILE) if (extract / OUTCOMES_FILE).exists() else None
    custom = pd.read_parquet(extract / CUSTOM_FILE) if (extract / CUSTOM_FILE).exists() else empty_measurements()
    return mapping, outcomes, custom

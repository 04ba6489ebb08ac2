"""Raw-data contracts: the rules every raw table must meet, and the only entry points to raw data.

Rows that break a rule are quarantined with every reason, never silently dropped or clipped;
training, batch scoring and the online service all go through `validate_tables`, so they see
the same rows. The rules are declared here as data; `chronorisk.data.quarantine` applies them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from chronorisk.data.codes import ATC_CODES, ICD10_CODES
from chronorisk.data.quarantine import MEMBER_REJECTED, MemberIndex, judge_table, reasons
from chronorisk.data.rejections import (
    QUARANTINE_DIR,
    ContractError,
    TableReport,
    ValidationReport,
    quarantine_frame,
    write_quarantine,
)
from chronorisk.data.table import Table
from chronorisk.data.table_contract import Col, FrameCheck, Rule, TableContract
from chronorisk.data.units import (
    CANONICAL_UNIT,
    DATE_DTYPE,
    LAB_CATALOGUE,
    UNIT_ALTERNATIVES,
    ColumnArray,
    missing_values,
    read_raw_file,
    text_equals,
)

__all__ = ["CONTRACTS", "DATE_DTYPE", "RULES", "TABLES", "ContractError", "RawTables", "Rule", "TableReport",
           "ValidationReport", "extract_date_of", "load_raw", "read_folder", "read_validated", "refused_members",
           "rule_message", "validate_columns", "validate_folder", "validate_tables"]

TABLES = ("members", "applications", "consultations", "lab_results", "wearable_daily")
FAMILY = ("none", "second_degree", "first_degree")
REGIONS = ("north", "northeast", "east", "south", "central", "southwest", "northwest")
ICD10 = r"[A-Z][0-9]{2}(?:\.[0-9A-Z]{1,4})?"
ATC = r"[A-Z](?:[0-9]{2}(?:[A-Z](?:[A-Z](?:[0-9]{2})?)?)?)?"
LAB_RANGES = {test: lab.plausible for test, lab in LAB_CATALOGUE.items()}
def _year_month_day(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calendar year, month and day of datetime64 values (as .dt.year, .month, .day; junk for NaT)."""
    months = days.astype("datetime64[M]")
    month_index = months.astype("int64")
    day = (days.astype("datetime64[D]") - months.astype("datetime64[D]")).astype("int64") + 1
    return month_index // 12 + 1970, month_index % 12 + 1, day


def _age_ok(f: Mapping[str, ColumnArray]) -> np.ndarray:
    b, e = np.asarray(f["birth_date"]), np.asarray(f["enrollment_start"])
    (by, bm, bd), (ey, em, ed) = _year_month_day(b), _year_month_day(e)
    age = ey - by - (em * 100 + ed < bm * 100 + bd)
    return ((age >= 18) & (age <= 100)) | np.isnat(b) | np.isnat(e)


def _enrollment_ok(f: Mapping[str, ColumnArray]) -> np.ndarray:
    return ~(np.asarray(f["enrollment_end"]) < np.asarray(f["enrollment_start"]))


def _blood_pressure_ok(f: Mapping[str, ColumnArray]) -> np.ndarray:
    return ~(np.asarray(f["dbp_mmhg"]) >= np.asarray(f["sbp_mmhg"]))


def _lab_ok(test: str, lo: float, hi: float) -> Callable[[Mapping[str, ColumnArray]], np.ndarray]:
    def ok(f: Mapping[str, ColumnArray]) -> np.ndarray:
        value = np.asarray(f["value"])
        return ~text_equals(f["test"], test) | np.isnan(value) | ((value >= lo) & (value <= hi))
    return ok


def _body(**extra: Col) -> dict[str, Col]:
    return {"weight_kg": Col("float", range=(25, 300, "kg")), "height_cm": Col("float", range=(120, 230, "cm")),
            "waist_cm": Col("float", range=(40, 200, "cm")), **extra}


_KEY, _DAY = Col("str", key=True, nullable=False), Col("date", key=True, nullable=False, not_future=True)
_MINUTES = Col("float", range=(0, 1440, "min"))
CONTRACTS: dict[str, TableContract] = {c.name: c for c in (
    TableContract("members", {
        "member_id": _KEY,
        "birth_date": Col("date", nullable=False, not_future=True),
        "sex": Col("str", nullable=False, codes=("F", "M")),
        "region": Col("str", nullable=False, codes=REGIONS),
        "enrollment_start": Col("date", nullable=False, not_future=True),
        "enrollment_end": Col("date"),
        "family_history_diabetes": Col("str", codes=FAMILY),
        "family_history_hypertension": Col("str", codes=FAMILY),
        # an extract's own family-history (pedigree) score, e.g. the diabetes pedigree function
        "family_history_score": Col("float", range=(0, 10, "score")),
    }, key=("member_id",), checks=(
        FrameCheck("out_of_range:age_at_enrollment", "birth_date", "age at enrollment 18-100 years", _age_ok),
        FrameCheck("out_of_range:enrollment_end", "enrollment_end", "enrollment_end not before enrollment_start",
                   _enrollment_ok),
    )),
    TableContract("applications", {
        "member_id": _KEY, "application_date": _DAY,
        **{q: Col("bool", nullable=False) for q in
           ("active_30min", "daily_veg_fruit", "ever_bp_treatment", "ever_high_glucose", "smoker")},
        "family_history": Col("str", nullable=False, codes=FAMILY),
        **_body(),
    }, key=("member_id",), record_date="application_date"),
    TableContract("consultations", {
        "consultation_id": _KEY, "member_id": _KEY, "date": _DAY,
        "channel": Col("str", nullable=False, codes=("online", "outpatient", "inpatient")),
        "icd10_codes": Col("codes", pattern=ICD10, code_list=ICD10_CODES),  # missing is read as "" (no codes)
        "atc_codes": Col("codes", pattern=ATC, code_list=ATC_CODES),
        **_body(sbp_mmhg=Col("float", range=(60, 260, "mmHg")), dbp_mmhg=Col("float", range=(30, 160, "mmHg")),
                # measured at the examination as such (an extract may carry BMI without weight and height)
                bmi=Col("float", range=(10, 90, "kg/m2")), triceps_skinfold_mm=Col("float", range=(2, 100, "mm")),
                pregnancies=Col("int", range=(0, 30, "count")), heart_rate_bpm=Col("float", range=(25, 220, "bpm"))),
        "smoking_status": Col("str", codes=("never", "former", "current")),
    }, key=("consultation_id",), record_date="date", checks=(
        FrameCheck("out_of_range:dbp_mmhg", "dbp_mmhg", "dbp_mmhg below sbp_mmhg", _blood_pressure_ok),
    )),
    TableContract("lab_results", {
        "member_id": _KEY, "date": _DAY,
        "test": Col("str", key=True, nullable=False, codes=tuple(CANONICAL_UNIT)),
        "value": Col("float", nullable=False),
        "unit": Col("str"),  # checked per test by the unit conversion, not here
    }, key=("member_id", "date", "test"), record_date="date", checks=tuple(
        FrameCheck(f"out_of_range:{t}", "value", f"{t} {lo:g}-{hi:g} {CANONICAL_UNIT[t]}", _lab_ok(t, lo, hi))
        for t, (lo, hi) in LAB_RANGES.items())),
    TableContract("wearable_daily", {
        "member_id": _KEY, "date": _DAY,
        "steps": Col("int", range=(0, 100_000, "steps")), "resting_hr": Col("float", range=(25, 150, "bpm")),
        "sleep_minutes": _MINUTES, "active_minutes": _MINUTES, "wear_minutes": _MINUTES,
    }, key=("member_id", "date"), record_date="date"),
)}


RULES: dict[str, dict[str, Rule]] = {name: c.rules for name, c in CONTRACTS.items()}


def rule_message(table: str, label: str) -> str:
    """The one message of a broken rule, for import, batch scoring and the service alike: table,
    column, rule and what the rule allows, never the value that broke it.
    'consultations.dbp_mmhg: out_of_range (dbp_mmhg 30-160 mmHg and dbp_mmhg below sbp_mmhg)'."""
    if label == MEMBER_REJECTED:
        return f"{table}.member_id: member_rejected (the member's row in members breaks a rule)"
    rule = RULES.get(table, {}).get(label)
    if rule is None:  # a rule of a data set's own measurements (features/custom.py)
        kind, _, column = label.partition(":")
        return f"{table}.{column or '*'}: {kind}"
    return f"{table}.{rule.column}: {rule.rule} ({rule.detail})"


def refused_members(rejected: Mapping[str, pd.DataFrame]) -> dict[str, str]:
    """member_ref -> the messages of every rule the member's quarantined rows break ("; "-joined, in
    table order): whom a scorer must refuse rather than score without the rows, as the service does."""
    found: dict[str, dict[str, None]] = {}
    for table, frame in rejected.items():
        if not len(frame) or "member_ref" not in frame:
            continue
        for ref, why in zip(frame["member_ref"].astype("str"), frame["reason"].astype("str"), strict=True):
            messages = found.setdefault(ref, {})
            for label in why.split(";"):
                messages[rule_message(table, label)] = None
    return {ref: "; ".join(messages) for ref, messages in found.items()}


@dataclass(frozen=True)
class RawTables:
    """The accepted, canonical rows of each raw table (empty frames for absent optional tables)."""

    members: pd.DataFrame
    applications: pd.DataFrame
    consultations: pd.DataFrame
    lab_results: pd.DataFrame
    wearable_daily: pd.DataFrame
    extract_date: date

    def frames(self) -> dict[str, pd.DataFrame]:
        """Every table by name, in TABLES order: what the feature function takes."""
        return {name: getattr(self, name) for name in TABLES}


def validate_tables(frames: Mapping[str, pd.DataFrame], *, extract_date: date, pepper: bytes,
                    ) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame], ValidationReport]:
    """Validate in-memory raw tables: (accepted canonical frames, quarantine frames, report).

    `validate_columns` on the frames' columns, the accepted tables handed back as frames.
    """
    raw = {name: Table.of(frame) for name, frame in frames.items()}
    accepted, rejected, report = validate_columns(raw, extract_date=extract_date, pepper=pepper)
    none = np.zeros(0, dtype=np.int64)
    for name in TABLES:  # an empty quarantine frame for each table without rejections, as write_quarantine expects
        if name not in rejected:
            rejected[name] = quarantine_frame(_raw_table(raw, name), _allowed(CONTRACTS[name]), none,
                                              np.zeros(0, dtype=object), pepper)
    return ({name: table.frame() for name, table in accepted.items()},
            {name: rejected[name] for name in TABLES}, report)


def _raw_table(tables: Mapping[str, Table], name: str) -> Table:
    """The raw table, or an empty one of the contract's columns where the input has none (an optional table)."""
    raw = tables.get(name)
    return raw if raw is not None else Table({k: missing_values(v.kind, 0) for k, v in CONTRACTS[name].columns.items()})


def _allowed(c: TableContract) -> list[str]:
    """The columns a quarantine file keeps: the contract's and their accepted unit alternatives."""
    return [*c.columns, *(UNIT_ALTERNATIVES[k][0] for k in c.columns if k in UNIT_ALTERNATIVES)]


def validate_columns(tables: Mapping[str, Table], *, extract_date: date, pepper: bytes,
                     ) -> tuple[dict[str, Table], dict[str, pd.DataFrame], ValidationReport]:
    """Validate raw tables: (accepted canonical tables, quarantine frames of the tables with rejected
    rows, report).

    The one implementation of the rules, shared by folder validation, feature builds and the
    online service (which builds its applicant's tables without a DataFrame). Quarantine frames
    are already pseudonymised (member_ref, no extra columns).
    """
    unknown = set(tables) - set(TABLES)
    if unknown:
        raise ValueError(f"unknown raw tables: {sorted(unknown)}; expected {TABLES}")
    if "members" not in tables:
        raise ContractError("members", "*", "missing_table", 0, message="members: required table is missing")
    accepted: dict[str, Table] = {}
    rejected: dict[str, pd.DataFrame] = {}
    reports: dict[str, TableReport] = {}
    members: MemberIndex | None = None
    for name in TABLES:
        c = CONTRACTS[name]
        raw = _raw_table(tables, name)
        canon, fails, member_rejected = judge_table(c, raw, extract_date, members)
        own = np.logical_or.reduce([*fails.values(), np.zeros(len(canon), dtype=bool)])
        keep = ~own & ~member_rejected
        accepted[name] = canon if keep.all() else canon.take(np.flatnonzero(keep))
        if name == "members":
            members = MemberIndex.of(canon["member_id"], np.asarray(canon["birth_date"]), keep)
        bad = np.flatnonzero(~keep)
        if len(bad):
            rejected[name] = quarantine_frame(raw, _allowed(c), bad, reasons(fails, bad, member_rejected), pepper)
        reports[name] = TableReport(read=len(raw), accepted=int(keep.sum()), rejected=int(own.sum()),
                                    member_rejected=int(member_rejected.sum()),
                                    by_rule={label: int(mask.sum()) for label, mask in fails.items()})
    return accepted, rejected, ValidationReport(extract_date=extract_date, tables=reports)


# --- folders: reading raw files, the manifest's extract date, quarantine files, strict mode


def read_folder(data_dir: Path) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """The raw tables of a folder and the file each came from; `_`-prefixed entries are never read."""
    data_dir = Path(data_dir)
    frames: dict[str, pd.DataFrame] = {}
    sources: dict[str, str] = {}
    for name in TABLES:
        found = [p for p in (data_dir / f"{name}.parquet", data_dir / f"{name}.csv") if p.exists()]
        if len(found) > 1:
            raise ContractError(name, "*", "ambiguous_source", 0,
                                message=f"{name}: both {name}.parquet and {name}.csv in {data_dir}; keep one")
        if not found:
            if name == "members":
                raise ContractError(name, "*", "missing_table", 0,
                                    message=f"members: required table missing (members.parquet or .csv in {data_dir})")
            continue
        path = found[0]
        frames[name] = read_raw_file(path)
        sources[name] = path.name
    return frames, sources


def extract_date_of(data_dir: Path, given: date | None = None) -> date:
    """The latest valid record date: given, else the folder's `_manifest.json`, else today."""
    if given is not None:
        return given
    manifest = Path(data_dir) / "_manifest.json"
    if manifest.exists():
        value = json.loads(manifest.read_text()).get("extract_date")
        if value:
            return date.fromisoformat(value)
    return date.today()


def _first_violation(report: ValidationReport) -> ContractError | None:
    """Strict mode's error: the first table (members first) and, within it, the first rule broken."""
    for table, t in report.tables.items():
        if t.by_rule:
            label, count = next(iter(t.by_rule.items()))
            rule = RULES[table][label]
            return ContractError(table, rule.column, rule.rule, count, rule.detail)
        if t.member_rejected:
            return ContractError(table, "member_id", "member_rejected", t.member_rejected, "member row rejected")
    return None


def _validate_dir(data_dir: Path, extract_date: date | None, pepper: bytes
                  ) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame], ValidationReport, dict[str, str]]:
    frames, sources = read_folder(data_dir)
    accepted, rejected, report = validate_tables(frames, extract_date=extract_date_of(data_dir, extract_date),
                                                 pepper=pepper)
    return accepted, rejected, report, sources


def _with_files(report: ValidationReport, sources: dict[str, str], written: dict[str, str]) -> ValidationReport:
    tables = {name: t.model_copy(update={"source": sources.get(name), "quarantine": written.get(name)})
              for name, t in report.tables.items()}
    return report.model_copy(update={"tables": tables})


def _write(data_dir: Path, rejected: Mapping[str, pd.DataFrame]) -> dict[str, str]:
    paths = write_quarantine(data_dir, rejected, TABLES)
    return {name: f"{QUARANTINE_DIR}/{path.name}" for name, path in paths.items()}


def read_validated(data_dir: Path, *, pepper: bytes, extract_date: date | None = None
                   ) -> tuple[RawTables, dict[str, pd.DataFrame], ValidationReport]:
    """load_raw's accepted tables, with the quarantine frames (written nowhere) beside them."""
    accepted, rejected, report, sources = _validate_dir(Path(data_dir), extract_date, pepper)
    return RawTables(**accepted, extract_date=report.extract_date), rejected, _with_files(report, sources, {})


def load_raw(data_dir: Path, *, extract_date: date | None = None, pepper: bytes,
             write_quarantine: bool = False) -> tuple[RawTables, ValidationReport]:
    """Read and validate a raw folder: the only way feature code gets raw data."""
    data_dir = Path(data_dir)
    accepted, rejected, report, sources = _validate_dir(data_dir, extract_date, pepper)
    written = _write(data_dir, rejected) if write_quarantine else {}
    return RawTables(**accepted, extract_date=report.extract_date), _with_files(report, sources, written)


def validate_folder(data_dir: Path, *, strict: bool = False, extract_date: date | None = None,
                    pepper: bytes) -> ValidationReport:
    """Validate a raw folder; quarantine bad rows to DIR/_rejected/, or in strict mode raise instead.

    Strict mode writes (and removes) nothing: it raises ContractError for the first table and
    rule, in RULES order, that any row breaks.
    """
    data_dir = Path(data_dir)
    _, rejected, report, sources = _validate_dir(data_dir, extract_date, pepper)
    if strict:
        error = _first_violation(report)
        if error is not None:
            raise error
        return _with_files(report, sources, {})
    return _with_files(report, sources, _write(data_dir, rejected))

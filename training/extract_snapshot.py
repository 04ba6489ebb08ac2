"""Training snapshots of an imported extract whose outcome comes from its own column.

Imported data is small (hundreds to a few thousand applicants), so it is read whole through the
contracts instead of in member chunks. One row per applicant: features as of the day after the
application date, the extract's outcome as the label, and the data set's custom features beside
the built-in ones (the snapshot's metadata carries their registry entries to training).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from chronorisk.data.contracts import read_validated
from chronorisk.data.declaration import FeatureSpec
from chronorisk.data.enrolment import enrolled_on
from chronorisk.data.extract import read_imported
from chronorisk.data.mapping import ExtractMapping
from chronorisk.data.measurements import CUSTOM_TABLE, validate_measurements
from chronorisk.model.product import ProductSpec
from features.build import compute_features
from features.custom import custom_registry
from features.pointintime import KEY
from features.registry import FeatureRegistry
from features.runners import stream_to_parquet, with_contract_reasons
from training.snapshot import SEGMENT_COLUMNS

EXTRACT_SPLIT = "extract"  # every row; the trainer holds out its test rows itself (training/kfold.py)


def imported_tables(data_dir: Path, pepper: bytes) -> tuple[dict[str, pd.DataFrame], list[FeatureSpec], Any]:
    """An imported folder's accepted tables (custom measurements included), its custom feature
    specs and its validation report."""
    tables, _, specs, report = imported_tables_and_rejects(data_dir, pepper)
    return tables, specs, report


def imported_tables_and_rejects(data_dir: Path, pepper: bytes
                                ) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame], list[FeatureSpec], Any]:
    """imported_tables, with the quarantine frames of every table (custom measurements included)."""
    raw, rejected, report = read_validated(data_dir, pepper=pepper)
    mapping, _, custom = read_imported(data_dir)
    ranges = {name: c.range for name, c in mapping.custom_features.items()}
    accepted, custom_rejected = validate_measurements(custom, ranges,
                                                      pd.Index(raw.members["member_id"].astype("str")), pepper)
    tables = raw.frames()
    tables[CUSTOM_TABLE] = accepted
    return tables, {**rejected, CUSTOM_TABLE: custom_rejected}, mapping.custom_specs(), report


def check_outcome_timing(mapping: ExtractMapping, spec: ProductSpec) -> str | None:
    """Refuse an extract whose outcome means something else than the product's; a warning when the
    mapping does not say what it means."""
    timing = mapping.outcome.timing if mapping.outcome is not None else None
    if timing is None:
        return (f"the mapping does not say whether its outcome is incident or current (outcome.timing); "
                f"taken as the product's: {spec.outcome_meaning()}")
    if timing != spec.outcome_timing:
        raise ValueError(f"product {spec.name} learns {spec.outcome_meaning()} (outcome_timing: {spec.outcome_timing}),"
                         f" but the extract's outcome is {timing} (mapping outcome.timing); use a product whose "
                         f"outcome_timing is {timing}, or an extract with the product's outcome")
    return None


def build_extract_snapshot(data_dir: Path, spec: ProductSpec, out: Path, *, pepper: bytes,
                           warn: Callable[[str], None] | None = None) -> dict[str, int]:
    """Write the snapshot parquet; return counts (outcomes, rows, positives, dropped members).

    The extract's outcome must mean what the product's does (incident or current); `warn` hears
    when the mapping does not say, and when the outcome's base rate sits in the product's lowest or
    highest risk class (most applicants would land in one class)."""
    if spec.outcome != "extract":
        raise ValueError(f"product {spec.name}: outcome is {spec.outcome!r}; build it with `features build`")
    tables, custom_specs, report = imported_tables(data_dir, pepper)
    mapping, outcomes, _ = read_imported(data_dir)
    if outcomes is None:
        raise ValueError(f"{data_dir}: the mapping declares no outcome column; product {spec.name} needs one")
    notes = [check_outcome_timing(mapping, spec)]
    registry = custom_registry(custom_specs)
    members = tables["members"]
    labelled = outcomes[outcomes["member_id"].isin(members["member_id"])].reset_index(drop=True)
    labelled["index_date"] = pd.to_datetime(labelled["index_date"]).astype("datetime64[s]")
    features = compute_features(tables, labelled[KEY], registry)
    rows = labelled.assign(split=EXTRACT_SPLIT, event_date=pd.NaT)
    rows = rows.merge(members[["member_id", *SEGMENT_COLUMNS]], on="member_id", how="left")
    rows = rows.merge(features, on=KEY, how="left").sort_values(KEY, kind="stable", ignore_index=True)
    for col in SEGMENT_COLUMNS:
        rows[col] = rows[col].astype("str")
    meta = {"product": spec.name, "features": registry.names(), "extract_date": report.extract_date.isoformat(),
            "data_dir": str(Path(data_dir).resolve()), "source": {"import": True},
            "custom_features": [asdict(s) for s in custom_specs]}
    if len(rows):
        notes.append(spec.base_rate_warning(float(rows["label"].mean())))
    for note in notes:
        if note is not None and warn is not None:
            warn(note)
    stream_to_parquet([rows], out, meta)
    return {"outcomes": len(outcomes), "rows": len(rows), "positives": int(rows["label"].sum()),
            "members_rejected_by_contracts": len(outcomes) - len(labelled)}


def imported_features_at(data_dir: Path, index_date: date, registry: FeatureRegistry,
                         pepper: bytes, contract_reasons: bool = False) -> pd.DataFrame:
    """Features (custom ones included) of every member of an imported folder enrolled on `index_date`:
    `chronorisk score --data` on an import, whose custom measurements the chunked runner does not read.
    With `contract_reasons`, the rules each member's records break (features/runners.py CONTRACT_REASONS)."""
    tables, rejected, _, _ = imported_tables_and_rejects(data_dir, pepper)
    members = tables["members"]
    t = pd.Timestamp(index_date)
    enrolled = enrolled_on(members, t)
    pairs = pd.DataFrame({"member_id": members.loc[enrolled, "member_id"], "index_date": t})
    features = compute_features(tables, pairs, registry).sort_values("member_id", kind="stable", ignore_index=True)
    return with_contract_reasons(features, rejected, pepper) if contract_reasons else features

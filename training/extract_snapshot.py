"""Training snapshots of an imported extract whose outcome comes from its own column.

Imported data is small (hundreds to a few thousand applicants), so it is read whole through the
contracts instead of in member chunks. One row per applicant: features as of the day after the
application date, the extract's outcome as the label, and the data set's custom features beside
the built-in ones (the snapshot's metadata carries their registry entries to training).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from features.build import compute_features
from features.contracts import load_raw
from features.custom import CUSTOM_TABLE, custom_registry, validate_measurements
from features.extract import read_imported
from features.pointintime import KEY
from features.registry import FeatureRegistry, FeatureSpec
from features.runners import stream_to_parquet
from training.products import ProductSpec
from training.snapshot import SEGMENT_COLUMNS

EXTRACT_SPLIT = "extract"  # every row; the trainer holds out its test rows itself (training/kfold.py)


def imported_tables(data_dir: Path, pepper: bytes) -> tuple[dict[str, pd.DataFrame], list[FeatureSpec], Any]:
    """An imported folder's accepted tables (custom measurements included), its custom feature
    specs and its validation report."""
    raw, report = load_raw(data_dir, pepper=pepper)
    mapping, _, custom = read_imported(data_dir)
    ranges = {name: c.range for name, c in mapping.custom_features.items()}
    accepted, _ = validate_measurements(custom, ranges, pd.Index(raw.members["member_id"].astype("str")), pepper)
    tables = {name: getattr(raw, name) for name in ("members", "applications", "consultations", "lab_results",
                                                    "wearable_daily")}
    tables[CUSTOM_TABLE] = accepted
    return tables, mapping.custom_specs(), report


def build_extract_snapshot(data_dir: Path, spec: ProductSpec, out: Path, *, pepper: bytes) -> dict[str, int]:
    """Write the snapshot parquet; return counts (outcomes, rows, positives, dropped members)."""
    if spec.outcome != "extract":
        raise ValueError(f"product {spec.name}: outcome is {spec.outcome!r}; build it with `features build`")
    tables, custom_specs, report = imported_tables(data_dir, pepper)
    _, outcomes, _ = read_imported(data_dir)
    if outcomes is None:
        raise ValueError(f"{data_dir}: the mapping declares no outcome column; product {spec.name} needs one")
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
    stream_to_parquet([rows], out, meta)
    return {"outcomes": len(outcomes), "rows": len(rows), "positives": int(rows["label"].sum()),
            "members_rejected_by_contracts": len(outcomes) - len(labelled)}


def imported_features_at(data_dir: Path, index_date: date, registry: FeatureRegistry,
                         pepper: bytes) -> pd.DataFrame:
    """Features (custom ones included) of every member of an imported folder enrolled on `index_date`:
    `chronorisk score --data` on an import, whose custom measurements the chunked runner does not read."""
    tables, _, _ = imported_tables(data_dir, pepper)
    members = tables["members"]
    t = pd.Timestamp(index_date)
    end = members["enrollment_end"]
    enrolled = ((members["enrollment_start"] <= t) & (end.isna() | (end >= t))).to_numpy(dtype=bool, na_value=False)
    pairs = pd.DataFrame({"member_id": members.loc[enrolled, "member_id"], "index_date": t})
    return compute_features(tables, pairs, registry).sort_values("member_id", kind="stable", ignore_index=True)

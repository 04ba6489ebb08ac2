"""The own-data test extract: a small synthetic cohort delivered as the example insurer does (a flat
CSV in foreign names, lb, mg/dL, day-first dates, a custom skinfold, an outcome column), the
same member snapshots as a raw folder in our own names, and the folder `chronorisk import` writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import yaml

from chronorisk.data.contracts import load_raw
from chronorisk.data.extract import import_extract
from chronorisk.data.mapping import load_mapping
from chronorisk.model.product import load_product
from chronorisk.synthetic.cohort import load_profile, synthesize
from chronorisk.synthetic.extract import member_snapshots, write_flat, write_relational

PEPPER = b"own-data-test-pepper"
MEMBERS, SEED = 1_500, 3
APPLICATION_DATES = [date(2020, 3, 31), date(2020, 9, 30)]
EXAMPLE_MAPPING = Path("experiments/mappings/example_flat.yaml")
RAW_TABLES = ("members", "applications", "consultations", "lab_results", "wearable_daily")


@dataclass(frozen=True)
class OwnData:
    cohort: Path  # the synthetic raw folder
    snapshots: pd.DataFrame  # one row per member, canonical names and units
    flat_csv: Path
    mapping: Path
    relational: Path  # the same snapshots as a raw folder in our own names
    imported: Path  # what `chronorisk import` wrote from the flat CSV


def example_mapping_for(csv: Path, folder: Path) -> Path:
    """The documented example mapping, pointed at `csv`."""
    raw = yaml.safe_load(EXAMPLE_MAPPING.read_text())
    raw["source"]["path"] = str(csv)
    path = folder / "mapping.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def build_own_data(root: Path) -> OwnData:
    cohort = root / "synth"
    synthesize(members=MEMBERS, seed=SEED, out_dir=cohort,
               profile=load_profile(Path("experiments/profiles/default.yaml")))
    raw, _ = load_raw(cohort, pepper=PEPPER)
    tables = {name: getattr(raw, name) for name in RAW_TABLES}
    snaps = member_snapshots(tables, load_product("diabetes"), APPLICATION_DATES, seed=SEED)
    flat = write_flat(snaps, root / "extract" / "applicants.csv")
    relational = write_relational(snaps, root / "relational")
    mapping = example_mapping_for(flat, root)
    imported = root / "imported"
    import_extract(load_mapping(mapping), mapping, imported, pepper=PEPPER)
    return OwnData(cohort, snaps, flat, mapping, relational, imported)

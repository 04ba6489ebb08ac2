"""The one feature function: raw canonical tables + (member, index date) pairs -> feature rows.

`feature_matrix` works on columnar tables (chronorisk.data.table) and returns a numpy block, so
one applicant and a million members run the same code without pandas' per-call cost; training
snapshots and batch scoring call it through `compute_features` (frames in, a frame out), the
online service directly. The runners in `features/runners.py` only decide which members' tables
it sees at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from chronorisk.data.measurements import CUSTOM_TABLE, empty_measurements
from chronorisk.data.table import Table
from features.consultations import consultation_features
from features.custom import custom_features, custom_names
from features.demographics import demographic_features
from features.labs import lab_features
from features.pointintime import Pairs
from features.questionnaire import questionnaire_features
from features.registry import FeatureRegistry, default_registry
from features.wearables import wearable_features

GROUPS: list[tuple[str, Callable[[Table, Pairs], dict[str, np.ndarray]]]] = [
    ("members", demographic_features),
    ("applications", questionnaire_features),
    ("consultations", consultation_features),
    ("lab_results", lab_features),
    ("wearable_daily", wearable_features),
]


def compute_features(tables: Mapping[str, pd.DataFrame | Table], pairs: pd.DataFrame,
                     registry: FeatureRegistry | None = None) -> pd.DataFrame:
    """Features of each (member_id, index_date) pair from records dated strictly before it.

    `tables` are accepted, canonical tables (the contracts' output). Returns member_id,
    index_date and one float64 column per registry feature, in registry order, one row per
    distinct pair in the order given: `feature_matrix` in a frame.
    """
    registry = registry or default_registry()
    prepared = Pairs.of_frame(pairs)
    names = registry.names()
    out = pd.DataFrame(feature_matrix({name: Table.of(t) for name, t in tables.items()}, prepared, registry),
                       columns=names, copy=False)
    out.insert(0, "index_date", prepared.index_dates)
    out.insert(0, "member_id", pd.array(prepared.member_ids, dtype="str"))
    return out


def feature_matrix(tables: Mapping[str, Table], pairs: Pairs, registry: FeatureRegistry) -> np.ndarray:
    """The one feature function: one float64 row per pair, one column per registry feature, in
    registry order. Training, batch scoring and the service all end here; the service calls it
    with its one applicant's tables, built from the request without a DataFrame."""
    columns: dict[str, np.ndarray] = {}
    for name, fn in GROUPS:
        columns.update(fn(tables[name], pairs))
    custom = custom_names(registry)
    if custom:  # a data set's own measurements (features/custom.py), when its registry declares any
        measurements = tables.get(CUSTOM_TABLE)
        columns.update(custom_features(measurements if measurements is not None else Table.of(empty_measurements()),
                                       pairs, custom))
    names = registry.names()
    missing = [n for n in names if n not in columns]
    if missing:
        raise KeyError(f"registry features with no function computing them: {missing}")
    block = np.empty((pairs.n, len(names)), dtype=float)
    for i, n in enumerate(names):
        block[:, i] = columns[n]
    return block

"""The one feature function: raw canonical tables + (member, index date) pairs -> feature frame.

Training snapshots, batch scoring and the online service all call `compute_features`; the
runners in `features/runners.py` only decide which members' tables it sees at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from chronorisk.data.measurements import CUSTOM_TABLE, empty_measurements
from features.consultations import consultation_features
from features.custom import custom_features, custom_names
from features.demographics import demographic_features
from features.labs import lab_features
from features.pointintime import Pairs, index_frame
from features.questionnaire import questionnaire_features
from features.registry import FeatureRegistry, default_registry
from features.wearables import wearable_features

GROUPS: list[tuple[str, Callable[[pd.DataFrame, Pairs], dict[str, np.ndarray]]]] = [
    ("members", demographic_features),
    ("applications", questionnaire_features),
    ("consultations", consultation_features),
    ("lab_results", lab_features),
    ("wearable_daily", wearable_features),
]


def compute_features(tables: Mapping[str, pd.DataFrame], pairs: pd.DataFrame,
                     registry: FeatureRegistry | None = None) -> pd.DataFrame:
    """Features of each (member_id, index_date) pair from records dated strictly before it.

    `tables` are accepted, canonical frames (the contracts' output). Returns member_id,
    index_date and one float64 column per registry feature, in registry order, one row per
    distinct pair in the order given.
    """
    registry = registry or default_registry()
    prepared = Pairs.of(index_frame(pairs))
    columns: dict[str, np.ndarray] = {}
    for name, fn in GROUPS:
        columns.update(fn(tables[name], prepared))
    custom = custom_names(registry)
    if custom:  # a data set's own measurements (features/custom.py), when its registry declares any
        columns.update(custom_features(tables.get(CUSTOM_TABLE, empty_measurements()), prepared, custom))
    missing = [n for n in registry.names() if n not in columns]
    if missing:
        raise KeyError(f"registry features with no function computing them: {missing}")
    frame = prepared.frame
    names = registry.names()
    # one float block: building 76 separate columns costs more than the features for one applicant
    block = np.empty((prepared.n, len(names)), dtype=float)
    for i, n in enumerate(names):
        block[:, i] = np.asarray(columns[n], dtype=float)
    out = pd.DataFrame(block, columns=names, copy=False)
    out.insert(0, "index_date", frame["index_date"].to_numpy())
    out.insert(0, "member_id", frame["member_id"].to_numpy())
    return out

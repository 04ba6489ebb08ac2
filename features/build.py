"""The one feature function: raw canonical tables + (member, index date) pairs -> feature frame.

Training snapshots, batch scoring and the online service all call `compute_features`; the
runners in `features/runners.py` only decide which members' tables it sees at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd

from features.consultations import consultation_features
from features.demographics import demographic_features
from features.labs import lab_features
from features.pointintime import KEY, index_frame
from features.questionnaire import questionnaire_features
from features.registry import FeatureRegistry, default_registry
from features.wearables import wearable_features

GROUPS: list[tuple[str, Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame]]] = [
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
    index = index_frame(pairs)
    parts = [fn(tables[name], index) for name, fn in GROUPS]
    features = pd.concat(parts, axis=1)
    missing = [n for n in registry.names() if n not in features.columns]
    if missing:
        raise KeyError(f"registry features with no function computing them: {missing}")
    out = features[registry.names()].reset_index()
    return out.rename(columns={"level_0": KEY[0], "level_1": KEY[1]})

"""Custom features: measurements an insurer's extract carries that the built-in registry does not know.

They are kept long (member_id, date, feature, value), like lab results, and each becomes one
feature, the latest value dated before the index date, so point-in-time rules, training, serving
and reasons treat them like built-in ones. The mapping declares them (unit, description,
direction, reason); `custom_registry` adds them to a copy of the built-in registry.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from chronorisk.data.declaration import FeatureSpec
from chronorisk.data.table import Table
from features.pointintime import Pairs, join_before, last
from features.registry import FeatureRegistry, default_registry

CUSTOM_SOURCE = "custom"


def custom_registry(specs: Iterable[FeatureSpec]) -> FeatureRegistry:
    """The built-in features followed by a data set's own ones (a name clash is an error)."""
    return default_registry().extend(specs)


def custom_names(registry: FeatureRegistry) -> list[str]:
    return [s.name for s in registry if s.source == CUSTOM_SOURCE]


def custom_features(measurements: Table, pairs: Pairs, names: list[str]) -> dict[str, np.ndarray]:
    """Each custom feature's latest value dated strictly before the index date (NaN when none)."""
    j = join_before(measurements, pairs, tiebreak=("feature",))
    feature = np.asarray(j.raw("feature"), dtype=object)
    value = j.col("value")
    out: dict[str, np.ndarray] = {}
    for name in names:
        mask = feature == name
        out[name] = last(j.where(mask), value[mask])
    return out

"""What a data source is worth to a model: its share of the gain, and the lift it brings to the
members who have it, with a bootstrap interval (a product sold on wearable data must show both).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from chronorisk.model.bundle import Scorer
from features.registry import FeatureRegistry
from training.evaluate import safe_auc


def gain_share_by_source(booster: Scorer, registry: FeatureRegistry, *, measurements_only: bool = True
                         ) -> dict[str, float]:
    """Share of the model's total gain by feature source (`wearable_daily`, `lab_results`, ...).
    Coverage and testing-pattern features are left out of their source's share when
    `measurements_only` (they say how much data there is, not what it says), but stay in the total."""
    gain = pd.Series(booster.feature_importance("gain"), index=booster.feature_name(), dtype=float)
    total = float(gain.sum()) or 1.0
    out: dict[str, float] = {}
    for name, g in gain.items():
        spec = registry[str(name)]
        if measurements_only and spec.kind != "measurement":
            continue
        out[spec.source] = out.get(spec.source, 0.0) + float(g) / total
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def paired_auc_lift(y: np.ndarray, p_with: np.ndarray, p_without: np.ndarray, *, replicates: int = 1000,
                    seed: int = 0) -> dict[str, float]:
    """AUC(with) - AUC(without) on the same rows, with a percentile bootstrap 95 % interval (rows
    resampled, both models on each resample, so the interval is of the paired difference)."""
    y = np.asarray(y, dtype=int)
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(replicates):
        i = rng.integers(0, len(y), len(y))
        if y[i].min() == y[i].max():
            continue
        diffs.append(safe_auc(y[i], p_with[i]) - safe_auc(y[i], p_without[i]))
    lo, hi = np.percentile(diffs, [2.5, 97.5]) if diffs else (float("nan"), float("nan"))
    return {"auc_with": safe_auc(y, p_with), "auc_without": safe_auc(y, p_without),
            "lift": safe_auc(y, p_with) - safe_auc(y, p_without), "ci_low": float(lo), "ci_high": float(hi),
            "replicates": float(len(diffs)), "rows": float(len(y)), "events": float(y.sum())}

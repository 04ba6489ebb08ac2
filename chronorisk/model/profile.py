"""The reference profile stored with every model version: binned distributions of each feature,
of the score and of the risk-class mix on the rows the model learned from.

The monitor bins today's population by exactly these edges (the reference's deciles plus a
missing bin, design decision 18), so the profile is all it needs from training; it lives in the
hash-checked model bundle, because a drift verdict against a doctored reference is worthless.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

DECILES = tuple(k / 10 for k in range(1, 10))
PROFILE_VERSION = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BinnedDistribution(_Strict):
    """Shares of rows in (-inf, e0], (e0, e1], ..., (e_last, inf) and missing; all shares sum to 1."""

    edges: list[float] = Field(description="distinct reference deciles, ascending")
    shares: list[float] = Field(description="share of all rows in each of the len(edges)+1 value bins")
    missing: float = Field(ge=0, le=1, description="share of rows with no value")
    minimum: float | None = Field(description="smallest reference value; below it a value is out of range")
    maximum: float | None = Field(description="largest reference value; above it a value is out of range")


class ReferenceProfile(_Strict):
    profile_version: int = PROFILE_VERSION
    rows: int = Field(ge=1)
    source: str = Field(description="which rows the profile describes, e.g. 'train split 2018-01-01, 2019-01-01'")
    features: dict[str, BinnedDistribution]
    score: BinnedDistribution
    risk_classes: dict[str, float] = Field(description="share of reference rows in each risk class, in class order")

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ReferenceProfile:
        return cls.model_validate_json(text)


def decile_edges(values: np.ndarray) -> list[float]:
    """Distinct deciles of the non-missing values, as observed values (inverted CDF), so a discrete
    feature gets its own values as edges and fewer than nine of them."""
    present = values[~np.isnan(values)]
    if present.size == 0:
        return []
    return [float(e) for e in np.unique(np.quantile(present, DECILES, method="inverted_cdf"))]


def bin_counts(values: np.ndarray, edges: Sequence[float]) -> tuple[np.ndarray, int]:
    """Counts per value bin (right-closed, by `edges`) and the count of missing values."""
    values = np.asarray(values, dtype=float)
    missing = np.isnan(values)
    index = np.searchsorted(np.asarray(edges, dtype=float), values[~missing], side="left")
    return np.bincount(index, minlength=len(edges) + 1), int(missing.sum())


def binned(values: np.ndarray, edges: Sequence[float] | None = None) -> BinnedDistribution:
    """The distribution of `values` over `edges` (default: their own deciles)."""
    values = np.asarray(values, dtype=float)
    edges = decile_edges(values) if edges is None else list(edges)
    counts, missing = bin_counts(values, edges)
    n = max(len(values), 1)
    present = values[~np.isnan(values)]
    return BinnedDistribution(edges=edges, shares=[float(c) / n for c in counts], missing=missing / n,
                              minimum=float(present.min()) if present.size else None,
                              maximum=float(present.max()) if present.size else None)


def build_reference(features: dict[str, np.ndarray], score: np.ndarray, risk_classes: Sequence[str],
                    class_names: Sequence[str], source: str) -> ReferenceProfile:
    """The profile of the reference rows: each feature's and the score's deciles, and the class mix."""
    rows = len(score)
    if rows == 0:
        raise ValueError("a reference profile needs at least one row")
    labels = np.asarray(risk_classes, dtype=object)
    mix = {name: float(np.mean(labels == name)) for name in class_names}
    return ReferenceProfile(rows=rows, source=source, features={k: binned(v) for k, v in features.items()},
                            score=binned(score), risk_classes=mix)

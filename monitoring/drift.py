"""Drift of a scored population against a model's reference profile.

Population stability index (PSI) of the score, of every feature and of the risk-class mix, on
the reference's bins; missing-rate changes and out-of-range rates beside them. Each PSI is
judged against two thresholds (watch, act) from a YAML config, and the worst judgement is the
exit code a scheduler alerts on: 0 all below watch, 1 at watch, 2 at act (decision 18).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from chronorisk.model.profile import BinnedDistribution, ReferenceProfile, bin_counts

EMPTY_BIN_SHARE = 1e-4
MONITOR_CONFIG = Path("experiments/monitoring.yaml")
Level = Literal["ok", "watch", "act"]
EXIT_CODES: dict[str, int] = {"ok": 0, "watch": 1, "act": 2}


class MonitorConfig(BaseModel):
    """Thresholds of the monitor, from `experiments/monitoring.yaml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    watch: float = Field(0.10, gt=0, description="PSI at or above this is 'watch' (exit 1)")
    act: float = Field(0.25, gt=0, description="PSI at or above this is 'act' (exit 2)")
    min_rows: int = Field(100, ge=1, description="fewer scored rows than this is an error, not a verdict")
    out_of_range_watch: float = Field(0.01, ge=0, le=1,
                                      description="share of values outside the reference range worth a note")

    @model_validator(mode="after")
    def _ordered(self) -> MonitorConfig:
        if not self.watch < self.act:
            raise ValueError(f"watch ({self.watch}) must be below act ({self.act})")
        return self


def load_monitor_config(path: Path = MONITOR_CONFIG) -> MonitorConfig:
    """The thresholds YAML; the defaults when the file does not exist; an error naming the key when wrong."""
    if not path.exists():
        return MonitorConfig()
    try:
        return MonitorConfig.model_validate(yaml.safe_load(path.read_text()) or {})
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in err.errors())
        raise ValueError(f"{path}: {problems}") from None


def shares_with_floor(shares: np.ndarray) -> np.ndarray:
    """Empty bins get a share of 1e-4 so the logarithm stays finite (no renormalising)."""
    shares = np.asarray(shares, dtype=float)
    return np.where(shares > 0, shares, EMPTY_BIN_SHARE)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index: sum over bins of (actual - expected) * ln(actual / expected)."""
    e, a = shares_with_floor(expected), shares_with_floor(actual)
    return float(np.sum((a - e) * np.log(a / e)))


def level(value: float, config: MonitorConfig) -> Level:
    if value >= config.act:
        return "act"
    return "watch" if value >= config.watch else "ok"


@dataclass(frozen=True)
class Drift:
    """One monitored quantity: its PSI and the shares it was computed from (missing bin last)."""

    name: str
    kind: Literal["score", "feature", "risk_class"]
    psi: float
    level: Level
    bins: list[str]
    expected: list[float]
    actual: list[float]
    missing_reference: float = 0.0
    missing_current: float = 0.0
    out_of_range: float = 0.0

    @property
    def missing_change(self) -> float:
        return self.missing_current - self.missing_reference


@dataclass
class DriftResult:
    product: str
    model_version: str
    source: str
    rows: int
    reference_rows: int
    config: MonitorConfig
    items: list[Drift] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def level(self) -> Level:
        levels: tuple[Level, ...] = ("ok", "watch", "act")
        return levels[max((EXIT_CODES[d.level] for d in self.items), default=0)]

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.level]

    def flagged(self, at: Level = "watch") -> list[str]:
        """Names at or above a level, worst PSI first."""
        return [d.name for d in sorted(self.items, key=lambda d: -d.psi) if EXIT_CODES[d.level] >= EXIT_CODES[at]]

    def summary(self) -> dict[str, Any]:
        """The JSON summary: verdict, thresholds, and every monitored quantity."""
        return {"product": self.product, "model_version": self.model_version, "source": self.source,
                "rows": self.rows, "reference_rows": self.reference_rows, "level": self.level,
                "exit_code": self.exit_code, "thresholds": self.config.model_dump(),
                "flagged_watch": self.flagged("watch"), "flagged_act": self.flagged("act"), "notes": self.notes,
                "items": [{"name": d.name, "kind": d.kind, "psi": d.psi, "level": d.level,
                           "missing_reference": d.missing_reference, "missing_current": d.missing_current,
                           "missing_change": d.missing_change, "out_of_range": d.out_of_range, "bins": d.bins,
                           "expected": d.expected, "actual": d.actual} for d in self.items]}


def _bin_labels(edges: list[float]) -> list[str]:
    if not edges:
        return ["any value", "missing"]
    cuts = [f"{e:.4g}" for e in edges]
    return [f"<= {cuts[0]}", *[f"({a}, {b}]" for a, b in pairwise(cuts)], f"> {cuts[-1]}",
            "missing"]


def distribution_drift(name: str, kind: Literal["score", "feature"], ref: BinnedDistribution, values: np.ndarray,
                       config: MonitorConfig) -> Drift:
    """PSI of `values` on the reference's bins, the missing bin included."""
    values = np.asarray(values, dtype=float)
    counts, missing = bin_counts(values, ref.edges)
    n = len(values)
    actual = [*(counts / n).tolist(), missing / n]
    expected = [*ref.shares, ref.missing]
    present = values[~np.isnan(values)]
    outside = 0.0
    if present.size and ref.minimum is not None and ref.maximum is not None:
        outside = float(np.mean((present < ref.minimum) | (present > ref.maximum)))
    value = psi(np.asarray(expected), np.asarray(actual))
    return Drift(name=name, kind=kind, psi=value, level=level(value, config), bins=_bin_labels(ref.edges),
                 expected=expected, actual=actual, missing_reference=ref.missing, missing_current=missing / n,
                 out_of_range=outside)


def class_mix_drift(reference: dict[str, float], classes: pd.Series, config: MonitorConfig) -> Drift:
    """PSI of the risk-class mix (the classes are the bins)."""
    names = list(reference)
    labels = classes.astype("object").to_numpy()
    actual = [float(np.mean(labels == name)) for name in names]
    expected = [reference[name] for name in names]
    value = psi(np.asarray(expected), np.asarray(actual))
    return Drift(name="risk_class_mix", kind="risk_class", psi=value, level=level(value, config), bins=names,
                 expected=expected, actual=actual)


def compare(reference: ReferenceProfile, scored: pd.DataFrame, config: MonitorConfig, *, product: str,
            model_version: str, source: str) -> DriftResult:
    """Drift of a scored frame (feature columns, `probability`, `risk_class`) against the reference."""
    if len(scored) < config.min_rows:
        raise ValueError(f"{source}: {len(scored)} scored rows, fewer than min_rows={config.min_rows}; "
                         "too few to judge drift")
    missing = sorted({*reference.features, "probability", "risk_class"} - set(scored.columns))
    if missing:
        raise KeyError(f"{source}: columns the monitor needs are absent: {missing[:8]}"
                       f"{' ...' if len(missing) > 8 else ''} ({len(missing)} in all)")
    result = DriftResult(product=product, model_version=model_version, source=source, rows=len(scored),
                         reference_rows=reference.rows, config=config)
    result.items.append(distribution_drift("score", "score", reference.score,
                                           scored["probability"].to_numpy(dtype=float), config))
    result.items.append(class_mix_drift(reference.risk_classes, scored["risk_class"], config))
    for name, dist in reference.features.items():
        result.items.append(distribution_drift(name, "feature", dist, scored[name].to_numpy(dtype=float), config))
    for d in result.items:
        if d.out_of_range >= config.out_of_range_watch:
            result.notes.append(f"{d.name}: {d.out_of_range:.1%} of values outside the reference range")
    return result

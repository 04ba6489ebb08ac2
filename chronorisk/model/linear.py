"""The servable GLM: a regularised logistic model stored as JSON, scored and explained exactly.

On a few hundred rows a penalised logistic regression is often the best model there is, so it
must be deployable like the LightGBM one: no pickle, hash-checked, the same `/score`, batch
scorer and report. It answers the two calls the rest of chronorisk makes of a model,
`predict(x, raw_score=True)` (the linear predictor) and `predict(x, pred_contrib=True)` (one
column per feature plus the base value last, as LightGBM lays it out), so the explanation is
exact by construction: each feature's term minus its training mean, and the base value is the
mean linear predictor, so base + contributions = raw score.

Preprocessing is part of the model: a missing value is imputed with the training median and
flagged by its own indicator term; values are standardised; optionally a feature with enough
distinct values gets a cubic B-spline term (knots at quantiles, constant beyond the outer knots),
stored as knots and coefficients and evaluated with scipy's BSpline. training/glm.py fits it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.interpolate import BSpline

KIND = "glm"


@dataclass(frozen=True)
class Term:
    """One feature's additive term g(x): linear in the standardised value or a spline, plus the
    missing indicator's coefficient."""

    feature: str
    impute: float
    mean: float = 0.0
    scale: float = 1.0
    coef: float = 0.0
    missing_coef: float = 0.0
    knots: tuple[float, ...] = ()  # a spline term when set
    spline_coefs: tuple[float, ...] = ()
    degree: int = 3
    centre: float = 0.0  # the term's mean over the training rows: its contribution is g(x) - centre

    def value(self, x: np.ndarray) -> np.ndarray:
        missing = np.isnan(x)
        filled = np.where(missing, self.impute, x)
        if self.knots:
            t = np.asarray(self.knots)
            lo, hi = t[self.degree], t[-self.degree - 1]
            g = BSpline(t, np.asarray(self.spline_coefs), self.degree, extrapolate=False)(np.clip(filled, lo, hi))
        else:
            g = self.coef * (filled - self.mean) / self.scale
        return np.asarray(g + self.missing_coef * missing, dtype=float)


@dataclass(frozen=True)
class LinearModel:
    features: list[str]
    intercept: float
    terms: list[Term]
    importance: list[float] = field(default_factory=list)  # mean |contribution| on the training rows

    def _values(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float).reshape(-1, len(self.features))
        return np.column_stack([t.value(x[:, j]) for j, t in enumerate(self.terms)]) if self.terms else \
            np.zeros((len(x), 0))

    @property
    def base_value(self) -> float:
        return float(self.intercept + sum(t.centre for t in self.terms))

    def predict(self, x: np.ndarray, raw_score: bool = False, pred_contrib: bool = False,
                **_: Any) -> np.ndarray:
        """LightGBM's call shape; `raw_score` is the linear predictor, the default a probability."""
        g = self._values(x)
        if pred_contrib:
            centres = np.array([t.centre for t in self.terms])
            return np.column_stack([g - centres, np.full(len(g), self.base_value)])
        raw = self.intercept + g.sum(axis=1)
        return raw if raw_score else 1.0 / (1.0 + np.exp(-raw))

    def feature_name(self) -> list[str]:
        return list(self.features)

    def feature_importance(self, importance_type: str = "gain") -> np.ndarray:
        """Mean |contribution| per feature: the GLM's counterpart of the trees' gain, for gain shares."""
        return np.asarray(self.importance or [0.0] * len(self.features), dtype=float)

    def num_trees(self) -> int:
        return 0

    def to_json(self) -> str:
        return json.dumps({"kind": KIND, "features": self.features, "intercept": self.intercept,
                           "importance": self.importance,
                           "terms": [{**t.__dict__, "knots": list(t.knots), "spline_coefs": list(t.spline_coefs)}
                                     for t in self.terms]}, indent=1)

    def save_model(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def from_json(cls, text: str) -> LinearModel:
        data = json.loads(text)
        if data.get("kind") != KIND or not isinstance(data.get("terms"), list):
            raise ValueError("glm.json: expected {'kind': 'glm', 'features': [...], 'intercept': float, "
                             "'terms': [...]}")
        terms = [Term(**{**t, "knots": tuple(float(v) for v in t.get("knots", ())),
                         "spline_coefs": tuple(float(v) for v in t.get("spline_coefs", ()))})
                 for t in data["terms"]]
        if [t.feature for t in terms] != data["features"]:
            raise ValueError("glm.json: the terms do not follow the feature list")
        return cls(features=list(data["features"]), intercept=float(data["intercept"]), terms=terms,
                   importance=[float(v) for v in data.get("importance", [])])

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
stored as knots and coefficients and evaluated with scipy's BSpline. The registry's monotone
directions bind the GLM as they bind the trees: a coefficient may not take the sign the registry
rules out (scikit-learn's L2 objective, minimised under those bounds with L-BFGS-B).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.interpolate import BSpline
from scipy.optimize import minimize
from sklearn.preprocessing import SplineTransformer

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


def _spline_columns(x: np.ndarray, knots: int) -> tuple[np.ndarray, BSpline] | None:
    """The B-spline basis of one (imputed) column, or None when it has too few distinct values."""
    if knots <= 0 or len(np.unique(x)) <= knots + 2:
        return None
    st = SplineTransformer(n_knots=knots, degree=3, knots="quantile", extrapolation="constant", include_bias=True)
    st.fit(x.reshape(-1, 1))
    spline = st.bsplines_[0]
    if len(np.unique(spline.t)) < 2:
        return None
    lo, hi = spline.t[3], spline.t[-4]
    return spline(np.clip(x, lo, hi)), spline


def penalised_logistic(design: np.ndarray, y: np.ndarray, c: float, bounds: list[tuple[float | None, float | None]],
                       weight: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Coefficients and intercept minimising sum(w * log loss) + ||beta||^2 / (2c), scikit-learn's
    L2 objective (intercept unpenalised), under box bounds on the coefficients (L-BFGS-B)."""
    n, k = design.shape
    w = np.ones(n) if weight is None else np.asarray(weight, dtype=float)
    yf = np.asarray(y, dtype=float)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        beta, b0 = theta[:k], theta[k]
        eta = design @ beta + b0
        loss = float(np.sum(w * (np.logaddexp(0.0, eta) - yf * eta)) + beta @ beta / (2.0 * c))
        r = w * (1.0 / (1.0 + np.exp(-eta)) - yf)
        return loss, np.concatenate([design.T @ r + beta / c, [r.sum()]])

    rate = float(np.clip(np.average(yf, weights=w), 1e-6, 1 - 1e-6))
    start = np.concatenate([np.zeros(k), [np.log(rate / (1 - rate))]])
    done = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=[*bounds, (None, None)],
                    options={"maxiter": 15000, "ftol": 1e-13, "gtol": 1e-9})
    return done.x[:k], float(done.x[k])


def fit_linear(x: np.ndarray, y: np.ndarray, features: list[str], *, c: float = 1.0, spline_knots: int = 0,
               weight: np.ndarray | None = None, monotone: list[int] | None = None) -> LinearModel:
    """L2 logistic regression on imputed, standardised values (and optional splines), folded back
    into per-feature terms. `c` is scikit-learn's inverse penalty on the standardised scale.
    `monotone` (the registry's directions, as the trees get them): a feature constrained to raise
    (+1) or lower (-1) risk gets a linear term whose coefficient may not have the other sign, so
    that no reason ever says "eats vegetables daily: raises risk"; its missing indicator is free."""
    x = np.asarray(x, dtype=float)
    n, p = x.shape
    directions = list(monotone) if monotone is not None else [0] * p
    bounds: list[tuple[float | None, float | None]] = []
    blocks: list[np.ndarray] = []
    layout: list[dict[str, Any]] = []
    for j in range(p):
        col = x[:, j]
        missing = np.isnan(col)
        impute = float(np.median(col[~missing])) if (~missing).any() else 0.0
        filled = np.where(missing, impute, col)
        entry: dict[str, Any] = {"impute": impute, "start": sum(b.shape[1] for b in blocks)}
        spline = _spline_columns(filled, spline_knots) if directions[j] == 0 else None  # monotone: linear
        if spline is not None:
            basis, bs = spline
            entry.update(kind="spline", width=basis.shape[1], knots=tuple(float(v) for v in bs.t))
            blocks.append(basis)
            bounds += [(None, None)] * basis.shape[1]
        else:
            mean, scale = float(filled.mean()), float(filled.std())
            scale = scale if scale > 0 else 1.0
            entry.update(kind="linear", width=1, mean=mean, scale=scale)
            blocks.append(((filled - mean) / scale).reshape(-1, 1))
            bounds.append((0.0, None) if directions[j] > 0 else (None, 0.0) if directions[j] < 0 else (None, None))
        if 0 < missing.sum() < n:
            ind_mean, ind_sd = float(missing.mean()), float(missing.std())
            entry.update(indicator=len(blocks), ind_mean=ind_mean, ind_sd=ind_sd)
            blocks.append(((missing - ind_mean) / ind_sd).reshape(-1, 1))
            bounds.append((None, None))
        layout.append(entry)
    design = np.hstack(blocks) if blocks else np.zeros((n, 0))
    beta, intercept = penalised_logistic(design, y, c, bounds, weight)
    offsets = np.cumsum([0] + [b.shape[1] for b in blocks])
    terms = []
    for j, entry in enumerate(layout):
        missing_coef = 0.0
        if "indicator" in entry:
            b = float(beta[offsets[entry["indicator"]]])
            missing_coef = b / entry["ind_sd"]
            intercept -= b * entry["ind_mean"] / entry["ind_sd"]
        cols = slice(entry["start"], entry["start"] + entry["width"])
        if entry["kind"] == "spline":
            terms.append(Term(features[j], entry["impute"], missing_coef=missing_coef, knots=entry["knots"],
                              spline_coefs=tuple(float(v) for v in beta[cols])))
        else:
            terms.append(Term(features[j], entry["impute"], mean=entry["mean"], scale=entry["scale"],
                              coef=float(beta[cols][0]), missing_coef=missing_coef))
    fitted = LinearModel(list(features), intercept, terms)
    g = fitted._values(x)
    centres = g.mean(axis=0) if n else np.zeros(p)
    terms = [Term(**{**t.__dict__, "centre": float(m)}) for t, m in zip(terms, centres, strict=True)]
    importance = np.abs(g - centres).mean(axis=0) if n else np.zeros(p)
    return LinearModel(list(features), intercept, terms, [float(v) for v in importance])

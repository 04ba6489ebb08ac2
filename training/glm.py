"""Fitting the servable GLM (chronorisk/model/linear.py): scikit-learn's L2-penalised logistic
objective, with the registry's monotone directions as sign bounds on the coefficients.

The directions bind the GLM as they bind the trees: a coefficient may not take the sign the
registry rules out (the objective minimised under those bounds with L-BFGS-B), so a reason never
says that eating vegetables raises risk.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.interpolate import BSpline
from scipy.optimize import minimize
from sklearn.preprocessing import SplineTransformer

from chronorisk.model.linear import LinearModel, Term


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

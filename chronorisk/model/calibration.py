"""Probability calibration: the map from the booster's raw score to the product's probability.

`platt` (two numbers) for a classifier of the horizon label; `discrete_hazard` (a slope and one
intercept per year of follow-up, training/person_period.py) for the censoring-aware model. Both
are stored as JSON, so the service applies the very same map without unpickling anything, and
both are fitted on held-out (validation) rows, never on the rows the booster learned from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted, validate_data


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def horizon_probability(raw: np.ndarray, slope: float, period_intercepts: list[float]) -> np.ndarray:
    """1 - prod_k (1 - sigmoid(slope * raw + c_k)): the probability of an event within the horizon."""
    raw = np.asarray(raw, dtype=float)
    survive = np.ones_like(raw)
    for c in period_intercepts:
        survive = survive * (1.0 - sigmoid(slope * raw + c))
    return 1.0 - survive


class PlattCalibrator(BaseEstimator):
    """p = sigmoid(slope * raw + intercept), fitted by unpenalised logistic regression."""

    def fit(self, raw: np.ndarray, y: np.ndarray) -> PlattCalibrator:
        x = validate_data(self, np.asarray(raw, dtype=float).reshape(-1, 1), reset=True)
        model = LogisticRegression(C=np.inf, solver="lbfgs", max_iter=1000).fit(x, np.asarray(y, dtype=int))
        self.slope_ = float(model.coef_[0, 0])
        self.intercept_ = float(model.intercept_[0])
        return self

    def predict_proba(self, raw: np.ndarray) -> np.ndarray:
        check_is_fitted(self, ["slope_", "intercept_"])
        p = sigmoid(self.slope_ * np.asarray(raw, dtype=float).ravel() + self.intercept_)
        return np.column_stack([1.0 - p, p])

    def to_json(self) -> str:
        check_is_fitted(self, ["slope_", "intercept_"])
        return json.dumps({"method": "platt", "slope": self.slope_, "intercept": self.intercept_}, indent=2)


@dataclass(frozen=True)
class Calibration:
    """The calibration as loaded from JSON by the service and every loader (no estimator object)."""

    slope: float
    intercept: float = 0.0
    method: str = "platt"
    period_intercepts: tuple[float, ...] = ()

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        data = json.loads(text)
        if data.get("method") == "discrete_hazard":
            periods = data.get("period_intercepts")
            if not isinstance(data.get("slope"), float) or not isinstance(periods, list) or not periods or not all(
                    isinstance(c, float) for c in periods):
                raise ValueError("calibration.json: expected {'method': 'discrete_hazard', 'slope': float, "
                                 "'period_intercepts': [float, ...]}")
            return cls(slope=data["slope"], method="discrete_hazard", period_intercepts=tuple(periods))
        if data.get("method") != "platt" or not all(isinstance(data.get(k), float) for k in ("slope", "intercept")):
            raise ValueError("calibration.json: expected {'method': 'platt', 'slope': float, 'intercept': float}")
        return cls(slope=data["slope"], intercept=data["intercept"])

    def probability(self, raw: np.ndarray) -> np.ndarray:
        if self.method == "discrete_hazard":
            return horizon_probability(raw, self.slope, list(self.period_intercepts))
        return sigmoid(self.slope * np.asarray(raw, dtype=float) + self.intercept)


class PeriodRows(Protocol):
    """Person-period rows as training/person_period.py builds them: year of follow-up, label, weight."""

    @property
    def period(self) -> np.ndarray: ...
    @property
    def label(self) -> np.ndarray: ...
    @property
    def weight(self) -> np.ndarray: ...


class HazardCalibrator:
    """Fits hazard_k = sigmoid(a * raw + c_k) on held-out person-period rows (weighted logistic
    regression, unpenalised); `predict_proba` composes the horizon probability. Learned state:
    `slope_`, `period_intercepts_` (scikit-learn's convention)."""

    def __init__(self, horizon_years: int) -> None:
        self.horizon_years = horizon_years

    def fit(self, raw: np.ndarray, pp: PeriodRows) -> HazardCalibrator:
        k = self.horizon_years
        x = np.column_stack([np.asarray(raw, dtype=float), np.eye(k)[pp.period]])
        model = LogisticRegression(C=np.inf, fit_intercept=False, solver="lbfgs", max_iter=2000)
        model.fit(x, pp.label.astype(int), sample_weight=pp.weight)
        self.slope_ = float(model.coef_[0, 0])
        self.period_intercepts_ = [float(c) for c in model.coef_[0, 1:]]
        return self

    def predict_proba(self, raw: np.ndarray) -> np.ndarray:
        p = horizon_probability(raw, self.slope_, self.period_intercepts_)
        return np.column_stack([1.0 - p, p])

    def to_json(self) -> str:
        return json.dumps({"method": "discrete_hazard", "slope": self.slope_,
                           "period_intercepts": self.period_intercepts_}, indent=2)

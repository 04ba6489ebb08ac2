"""The two candidates of a `member_and_time` run, fitted on the same rows and judged on the same test rows.

The censoring-aware model (training/person_period.py) learns from every observed year of every
training row; the drop-censored classifier (the first wave's model) learns only from rows with
complete horizon follow-up, and its dropped rows are counted. Both are scored on the test
members' complete rows; the better test AUC is registered, and both are logged with the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from chronorisk.model.calibration import HazardCalibrator, PlattCalibrator
from training.evaluate import metrics
from training.fit import Offsets, fit_booster
from training.person_period import baseline_logits, followup_years, person_periods, uno_c

HAZARD = "discrete_hazard"
DROP_CENSORED = "drop_censored"
HAZARD_STOP_METRIC = "auc"  # early stopping on person-year AUC; log loss stopped at a third of the trees


@dataclass
class Candidate:
    name: str
    booster: lgb.Booster
    calibrator: HazardCalibrator | PlattCalibrator
    rows: dict[str, float] = field(default_factory=dict)  # what it learned from

    def proba(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.calibrator.predict_proba(np.asarray(self.booster.predict(x, raw_score=True)))[:, 1])


def recency_weights(frame: pd.DataFrame, half_life_years: float | None) -> np.ndarray:
    """0.5 ** (years before the latest index date / half-life) per row; ones without a half-life."""
    if half_life_years is None:
        return np.ones(len(frame))
    t = frame["index_date"].to_numpy(dtype="datetime64[D]").astype(np.int64)
    return np.asarray(0.5 ** ((t.max() - t) / 365.25 / half_life_years), dtype=float)


def fit_hazard(train: pd.DataFrame, validation: pd.DataFrame, features: list[str], monotone: list[int],
               seed: int, params: dict[str, Any], horizon: int, half_life_years: float | None = None) -> Candidate:
    """Person-period rows of both parts; trees on top of the yearly baseline log-odds. Training rows may
    be weighted towards the latest index dates (the product's `recency_half_life_years`): the served
    population is the latest one, and the data sources it has (wearables since 2019) are the newest.
    The baseline and the calibration stay unweighted, fitted over every date."""
    pp_tr, pp_va = person_periods(train, horizon), person_periods(validation, horizon)
    base = baseline_logits(pp_tr, horizon)
    x_tr = train[features].to_numpy(dtype=float)
    x_va = validation[features].to_numpy(dtype=float)
    recency = recency_weights(train, half_life_years)[pp_tr.row]
    offsets = Offsets(base[pp_tr.period], base[pp_va.period], pp_tr.weight * recency, pp_va.weight)
    booster = fit_booster(x_tr[pp_tr.row], pp_tr.label, x_va[pp_va.row], pp_va.label, features, monotone, seed,
                          params, metric=HAZARD_STOP_METRIC, offsets=offsets)
    raw_va = np.asarray(booster.predict(x_va, raw_score=True))[pp_va.row]
    calibrator = HazardCalibrator(horizon).fit(raw_va, pp_va)
    return Candidate(HAZARD, booster, calibrator, {"train_rows": len(train), "train_person_years": len(pp_tr),
                                                   "train_events": int(pp_tr.label.sum()),
                                                   "validation_person_years": len(pp_va),
                                                   "recency_half_life_years": half_life_years or 0})


def fit_drop_censored(train: pd.DataFrame, validation: pd.DataFrame, features: list[str], monotone: list[int],
                      seed: int, params: dict[str, Any]) -> Candidate:
    """The horizon classifier on complete rows only: what the first wave trained."""
    tr, va = train[train["complete"]], validation[validation["complete"]]
    x_tr, x_va = tr[features].to_numpy(dtype=float), va[features].to_numpy(dtype=float)
    y_tr, y_va = tr["label"].to_numpy(dtype=int), va["label"].to_numpy(dtype=int)
    booster = fit_booster(x_tr, y_tr, x_va, y_va, features, monotone, seed, params)
    calibrator = PlattCalibrator().fit(np.asarray(booster.predict(x_va, raw_score=True)), y_va)
    return Candidate(DROP_CENSORED, booster, calibrator, {"train_rows": len(tr), "train_events": int(y_tr.sum()),
                                                          "dropped_censored_train_rows": len(train) - len(tr),
                                                          "dropped_censored_validation_rows":
                                                              len(validation) - len(va)})


def censored_concordance(rows: pd.DataFrame, p: np.ndarray, horizon: int) -> dict[str, float]:
    """Uno's C on rows with incomplete follow-up, truncated at the longest follow-up they have (at most
    the horizon): the later index dates cannot be judged at the full horizon yet."""
    if rows.empty:
        return {"rows": 0.0}
    years = followup_years(rows)
    tau = float(min(horizon, np.quantile(years, 0.95)))
    return {"rows": float(len(rows)), "events": float(rows["label"].sum()), "tau_years": tau,
            "uno_c": uno_c(years, rows["label"].to_numpy(dtype=bool), p, tau)}


def followup_table(frame: pd.DataFrame, horizon: int) -> dict[str, dict[str, int]]:
    """Rows by split and whole years of follow-up (events counted): the log says what was learned from."""
    years = np.minimum(np.floor(followup_years(frame) + 3.0 / 365.25), horizon).astype(int)
    table: dict[str, dict[str, int]] = {}
    for (part, y), n in pd.Series(1, index=pd.MultiIndex.from_arrays([frame["split"], years])).groupby(
            level=[0, 1]).sum().items():
        table.setdefault(str(part), {})[f"{int(y)}y"] = int(n)
    return table


def choose(candidates: list[Candidate], x_test: np.ndarray, y_test: np.ndarray) -> tuple[Candidate, dict[str, Any]]:
    """The candidate with the better test AUC on the same complete test rows, and both sets of figures."""
    figures = {c.name: {**metrics(y_test, c.proba(x_test)), **{k: float(v) for k, v in c.rows.items()}}
               for c in candidates}
    best = max(candidates, key=lambda c: figures[c.name]["roc_auc"])
    return best, {"chosen": best.name, "candidates": figures}

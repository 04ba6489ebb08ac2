"""Censoring-aware learning: person-period rows, the discrete-hazard calibration and Uno's C.

A (member, index date) row followed for f of the horizon's H years becomes one row per year it
was observed in, labelled "event in that year" (Singer and Willett, *Applied Longitudinal Data
Analysis*, ch. 10-12: the discrete-time hazard model). The booster learns one score f(x) shared
by every year, with the year's baseline log-odds as LightGBM's `init_score`, so the hazard of
year k is sigmoid(f(x) + b_k) and the horizon risk 1 - prod_k(1 - sigmoid(a f(x) + c_k)) is a
monotone function of the one raw score: TreeSHAP explains f(x) exactly, and the calibration
(a, c_k) maps it to the product's answer, the probability of an event within the horizon.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from chronorisk.data.units import YEAR_DAYS


@dataclass(frozen=True)
class PersonPeriods:
    """Row positions in the source frame, year of follow-up, label and exposure weight."""

    row: np.ndarray
    period: np.ndarray
    label: np.ndarray
    weight: np.ndarray

    def __len__(self) -> int:
        return len(self.row)


def followup_years(frame: pd.DataFrame) -> np.ndarray:
    """Years observed after the index date (to the event, or to the end of follow-up)."""
    days = (frame["followup_end"].to_numpy(dtype="datetime64[s]") - frame["index_date"].to_numpy(
        dtype="datetime64[s]")).astype("timedelta64[s]").astype(np.int64) / 86_400.0
    return np.maximum(days, 0.0) / YEAR_DAYS


def person_periods(frame: pd.DataFrame, horizon_years: int) -> PersonPeriods:
    """One row per (row, year of follow-up) observed; a partly observed last year without an event
    counts with its observed fraction as weight, so leavers add their person-time and no more."""
    years = followup_years(frame)
    event = frame["label"].to_numpy(dtype=int) == 1
    # A year of calendar follow-up is 365 or 366 days: snap censoring times within 3 days of a
    # whole year to it, so a fully observed year never leaves a sliver of a next one.
    whole = np.round(years)
    years = np.where(~event & (np.abs(years - whole) < 3.0 / YEAR_DAYS), whole, years)
    # Years entered: an event's year counts whole (the event is what happened in it).
    entered = np.minimum(np.ceil(years - 1e-9).astype(np.int64), horizon_years)
    entered = np.where(event, np.minimum(np.floor(years).astype(np.int64) + 1, horizon_years), entered)
    entered = np.maximum(entered, 0)
    row = np.repeat(np.arange(len(frame)), entered)
    start = np.cumsum(entered) - entered
    period = np.arange(len(row)) - np.repeat(start, entered)
    last = period == np.repeat(entered - 1, entered)
    label = (last & np.repeat(event, entered)).astype(np.int8)
    weight = np.where(label == 1, 1.0, np.clip(np.repeat(years, entered) - period, 0.0, 1.0))
    keep = weight > 0
    return PersonPeriods(row[keep], period[keep], label[keep], weight[keep])


def baseline_logits(pp: PersonPeriods, horizon_years: int) -> np.ndarray:
    """Log-odds of an event in each year of follow-up, pooled over members: the init scores."""
    out = np.zeros(horizon_years)
    for k in range(horizon_years):
        sel = pp.period == k
        w = pp.weight[sel]
        rate = float(np.sum(w * pp.label[sel]) / max(np.sum(w), 1e-12))
        rate = min(max(rate, 1e-6), 1 - 1e-6)
        out[k] = np.log(rate / (1.0 - rate))
    return out


def _km_censoring(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier estimate of the censoring survival G(t): (times, G just after each time)."""
    order = np.argsort(time, kind="stable")
    t, censored = time[order], ~event[order]
    uniq, first = np.unique(t, return_index=True)
    at_risk = len(t) - first
    n_cens = np.add.reduceat(censored.astype(int), first) if len(t) else np.zeros(0)
    g = np.cumprod(1.0 - n_cens / at_risk)
    return uniq, g


def uno_c(time: np.ndarray, event: np.ndarray, score: np.ndarray, tau: float) -> float:
    """Uno's concordance truncated at tau (Uno et al., Stat Med 2011), censoring-weighted so that
    rows followed for less than the horizon count without bias: pairs (i, j) with i's event
    before tau and before j's time, weighted by 1 / G(T_i-)^2."""
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=bool)
    score = np.asarray(score, dtype=float)
    uniq, g = _km_censoring(time, event)
    cases = np.flatnonzero(event & (time < tau))
    if len(cases) == 0:
        return float("nan")
    pos = np.searchsorted(uniq, time[cases], side="left") - 1  # G just before T_i
    g_minus = np.where(pos >= 0, g[np.maximum(pos, 0)], 1.0)
    w = 1.0 / np.maximum(g_minus, 1e-12) ** 2
    order = np.argsort(time, kind="stable")
    t_sorted, s_sorted = time[order], score[order]
    num = den = 0.0
    for i, wi in zip(cases, w, strict=True):
        later = np.searchsorted(t_sorted, time[i], side="right")
        others = s_sorted[later:]
        if len(others) == 0:
            continue
        den += wi * len(others)
        num += wi * (np.sum(score[i] > others) + 0.5 * np.sum(score[i] == others))
    return float(num / den) if den > 0 else float("nan")

"""Person-year rows, the discrete-hazard calibration and Uno's C, against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chronorisk.model.calibration import Calibration, HazardCalibrator
from training.person_period import person_periods, uno_c


def _rows(followup_end: list[str], label: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"index_date": pd.to_datetime(["2020-01-01"] * len(label)).astype("datetime64[s]"),
                         "followup_end": pd.to_datetime(followup_end).astype("datetime64[s]"), "label": label})


def test_each_observed_year_becomes_a_row_and_a_partial_year_counts_its_fraction():
    rows = _rows(["2023-01-01", "2022-07-02", "2021-03-01", "2021-01-01"], [0, 0, 1, 0])
    pp = person_periods(rows, horizon_years=3)
    got = list(zip(pp.row.tolist(), pp.period.tolist(), pp.label.tolist(), np.round(pp.weight, 3).tolist(),
                   strict=True))
    # row 0: three whole years, no event; row 1: leaves after 2.5 years (913 days = 2.5 years of 365.25);
    # row 2: event in its second year; row 3: exactly one year (366 days in 2020 snaps to one).
    assert got == [(0, 0, 0, 1.0), (0, 1, 0, 1.0), (0, 2, 0, 1.0),
                   (1, 0, 0, 1.0), (1, 1, 0, 1.0), (1, 2, 0, round(913 / 365.25 - 2, 3)),
                   (2, 0, 0, 1.0), (2, 1, 1, 1.0),
                   (3, 0, 0, 1.0)]


def test_the_hazard_calibration_recovers_the_hazards_it_was_drawn_from():
    rng = np.random.default_rng(0)
    n = 60_000
    raw = rng.normal(0, 1, n)
    slope, intercepts = 0.8, [-4.0, -3.5, -3.2]
    rows, periods, labels = [], [], []
    alive = np.ones(n, dtype=bool)
    for k, c in enumerate(intercepts):
        event = alive & (rng.random(n) < 1 / (1 + np.exp(-(slope * raw + c))))
        idx = np.flatnonzero(alive)
        rows.append(idx)
        periods.append(np.full(len(idx), k))
        labels.append(event[idx].astype(np.int8))
        alive &= ~event
    from training.person_period import PersonPeriods

    row = np.concatenate(rows)
    pp = PersonPeriods(row, np.concatenate(periods), np.concatenate(labels), np.ones(len(row)))
    cal = HazardCalibrator(3).fit(raw[pp.row], pp)
    assert cal.slope_ == pytest.approx(slope, abs=0.05)
    assert cal.period_intercepts_ == pytest.approx(intercepts, abs=0.08)
    # The horizon probability is one minus surviving all three years: by hand for raw = 0.
    loaded = Calibration.from_json(cal.to_json())
    by_hand = 1 - np.prod([1 - 1 / (1 + np.exp(-c)) for c in cal.period_intercepts_])
    assert loaded.probability(np.array([0.0]))[0] == pytest.approx(by_hand, rel=1e-12)


def test_uno_c_without_censoring_is_the_share_of_concordant_pairs():
    time = np.array([1.0, 2.0, 3.0, 4.0])
    event = np.array([True, True, True, True])
    # Pairs (i earlier event, j later): (0,1) (0,2) (0,3) (1,2) (1,3) (2,3); scores order all but (1,2).
    score = np.array([0.9, 0.5, 0.6, 0.1])
    assert uno_c(time, event, score, tau=10.0) == pytest.approx(5 / 6)


def test_uno_c_weights_events_after_censoring_by_the_censoring_survival():
    # Censoring survival G (Kaplan-Meier of the censorings): at 1.5 three are at risk (the event at 1 has
    # left) and one is censored, so G = 2/3 after it, and the event at 2 weighs 1 / (2/3)^2 = 2.25.
    time = np.array([1.0, 1.5, 2.0, 3.0])
    event = np.array([True, False, True, False])
    score = np.array([0.9, 0.1, 0.2, 0.3])
    # Event at 1 (weight 1): comparable with 1.5, 2, 3 -> concordant with all three.
    # Event at 2 (weight 2.25): comparable with 3 only -> discordant (0.2 < 0.3).
    w2 = 1 / (2 / 3) ** 2
    assert uno_c(time, event, score, tau=10.0) == pytest.approx(3 / (3 + w2))

"""Daily wearable records (steps, resting heart rate, sleep) of the members who own a device."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from chronorisk.data.units import YEAR_DAYS
from chronorisk.synthetic.population import DAY0, Population
from chronorisk.synthetic.profile import Profile
from chronorisk.synthetic.records import EPOCH_OFFSET, date_array, days, member_ids, stop_t

__all__ = ["wearables_table"]


def wearables_table(rng: np.random.Generator, pop: Population, profile: Profile) -> tuple[pa.Table, np.ndarray]:
    """Daily wearable records of the members who own a device, from its start date, with gaps."""
    n = len(pop)
    base = np.log(profile.wearable_uptake / (1.0 - profile.wearable_uptake))
    wearer = rng.random(n) < 1.0 / (1.0 + np.exp(-(base + 0.35 + 0.5 * pop.z_act - 0.03 * (pop.age0 - 45.0))))
    ws = (np.datetime64(profile.wearable_start, "D") - DAY0).astype(np.int64)
    end_day = days(stop_t(pop, profile))  # exclusive
    last_start = (np.datetime64(profile.extract_date, "D") - DAY0).astype(np.int64) - 180
    first = np.maximum(ws, days(pop.enrol_t))
    start = first + (rng.random(n) * np.maximum(last_start - first, 0)).astype(np.int64)
    length = np.where(wearer, np.maximum(end_day - start, 0), 0)
    start_out = np.where(length > 0, start, -1)
    wm = np.repeat(np.arange(n), length)
    offset = np.arange(len(wm)) - np.repeat(np.cumsum(length) - length, length)
    day = np.repeat(start, length) + offset
    q = rng.beta(5.0, 1.2, size=n)
    months = (length + 29) // 30
    month_on = rng.random(months.sum()) < np.repeat(q, months)
    month_idx = np.repeat(np.cumsum(months) - months, length) + offset // 30
    present = month_on[month_idx] & (rng.random(len(wm)) < 0.9)
    wm, day = wm[present], day[present]
    r = len(wm)
    t = day / YEAR_DAYS
    level = pop.steps0[wm] * np.exp(pop.steps_trend[wm] * (t - pop.enrol_t[wm]))
    weekday = (day + EPOCH_OFFSET + 3) % 7
    season = 1.0 - 0.06 * np.cos(2 * np.pi * ((day + EPOCH_OFFSET) % 365.25 - 200) / 365.25)
    steps = np.round(level * np.where(weekday >= 5, 0.88, 1.0) * season * np.exp(rng.normal(0, 0.35, r)))
    steps = np.minimum(steps, 60_000.0)  # a marathon day, not a sensor glitch; the contract rejects > 100,000
    sleep = np.round(pop.sleep_h[wm] * 60.0 + rng.normal(0, 1.0, r) * pop.sleep_irreg_min[wm])
    sleep = np.where(rng.random(r) < 0.08, np.nan, np.clip(sleep, 120, 780))
    table = pa.table({
        "member_id": member_ids(pop.idx[wm]),
        "date": date_array(day),
        "steps": pa.array(steps.astype(np.int64)),
        "resting_hr": pa.array(np.round(np.clip(pop.rhr[wm] + rng.normal(0, 2.2, r), 35.0, 140.0), 1)),
        "sleep_minutes": pa.array(sleep, from_pandas=True),
        "active_minutes": pa.array(np.round(np.maximum(steps / 110.0 - 20.0 + rng.normal(0, 8, r), 0.0))),
        "wear_minutes": pa.array(np.round(np.clip(rng.normal(1200, 150, r), 300, 1440))),
    })
    return table, start_out

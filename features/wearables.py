"""Wearable features over the 30, 90 and 365 days before the index date.

Members without a device have no rows: their activity features stay NaN and their coverage is
0, so the model sees "no data" rather than "no steps".
"""

from __future__ import annotations

import numpy as np

from chronorisk.data.declaration import FeatureSpec
from chronorisk.data.table import Table
from features.pointintime import Pairs, count, join_before, mean, median, slope_per_year, std

WINDOWS = (30, 90, 365)


def _s(name: str, unit: str, text: str, direction: int, reason: str, fmt: str = "{:,.0f}",
       kind: str = "measurement") -> FeatureSpec:
    return FeatureSpec(name, "wearable_daily", unit, text, direction, reason, fmt=fmt, kind=kind)


SPECS = [
    *[_s(f"steps_mean_{w}d", "steps/day", f"Mean daily steps over the last {w} days", -1,
         f"Average daily steps over the last {w} days: {{value}}") for w in WINDOWS],
    *[_s(f"steps_median_{w}d", "steps/day", f"Median daily steps over the last {w} days", -1,
         f"Typical (median) daily steps over the last {w} days: {{value}}") for w in (90, 365)],
    _s("steps_sd_90d", "steps/day", "Day-to-day standard deviation of steps over 90 days", 0,
       "Day-to-day variation in steps over 90 days: {value}"),
    _s("steps_trend_365d", "steps/day per year", "Trend of daily steps over the last year (slope)", -1,
       "Change in daily steps over the last year (per year): {value}", fmt="{:+,.0f}"),
    *[_s(f"share_days_8000_{w}d", "share", f"Share of days with data reaching 8,000 steps, last {w} days", -1,
         f"Share of days with 8,000 steps or more over the last {w} days: {{value}}", fmt="{:.0%}")
      for w in (90, 365)],
    _s("share_days_below_5000_90d", "share", "Share of days with data under 5,000 steps, last 90 days", 1,
       "Share of days under 5,000 steps over the last 90 days: {value}", fmt="{:.0%}"),
    _s("active_minutes_mean_90d", "min/day", "Mean active minutes a day over 90 days", -1,
       "Average active minutes a day over the last 90 days: {value}"),
    *[_s(f"rhr_mean_{w}d", "bpm", f"Mean resting heart rate over the last {w} days", 1,
         f"Average resting heart rate over the last {w} days: {{value}}", fmt="{:,.1f}") for w in WINDOWS],
    _s("rhr_trend_365d", "bpm per year", "Trend of resting heart rate over the last year (slope)", 1,
       "Change in resting heart rate over the last year (per year): {value}", fmt="{:+,.1f}"),
    *[_s(f"sleep_mean_{w}d", "min/night", f"Mean sleep duration over the last {w} days", 0,
         f"Average sleep over the last {w} days: {{value}}") for w in (90, 365)],
    _s("sleep_sd_90d", "min", "Night-to-night standard deviation of sleep over 90 days (irregularity)", 1,
       "Night-to-night variation in sleep over 90 days: {value}"),
    _s("short_sleep_share_90d", "share", "Share of nights under 6 hours over 90 days", 1,
       "Share of nights under 6 hours over the last 90 days: {value}", fmt="{:.0%}"),
    *[_s(f"wear_coverage_{w}d", "share", f"Days with wearable data over days in the last {w}", 0,
         f"Days with wearable data over the last {w} days: {{value}}", fmt="{:.0%}", kind="coverage") for w in WINDOWS],
]
NAMES = [s.name for s in SPECS]


def wearable_features(wear: Table, pairs: Pairs) -> dict[str, np.ndarray]:
    j = join_before(wear, pairs, within_days=max(WINDOWS))
    steps, rhr = j.col("steps"), j.col("resting_hr")
    sleep, active = j.col("sleep_minutes"), j.col("active_minutes")
    has_steps, has_sleep = ~np.isnan(steps), ~np.isnan(sleep)
    over_8000 = np.where(has_steps, steps >= 8000, np.nan).astype(float)
    under_5000 = np.where(has_steps, steps < 5000, np.nan).astype(float)
    short_sleep = np.where(has_sleep, sleep < 360, np.nan).astype(float)
    out: dict[str, np.ndarray] = {}
    for w in WINDOWS:
        inw = j.days_before <= w
        sub = j.where(inw)
        out[f"steps_mean_{w}d"] = mean(sub, steps[inw])
        out[f"rhr_mean_{w}d"] = mean(sub, rhr[inw])
        out[f"wear_coverage_{w}d"] = count(sub) / float(w)  # no device: 0, not unknown
        if w in (90, 365):
            out[f"steps_median_{w}d"] = median(sub, steps[inw])
            out[f"share_days_8000_{w}d"] = mean(sub, over_8000[inw])
            out[f"sleep_mean_{w}d"] = mean(sub, sleep[inw])
        if w == 90:
            out["steps_sd_90d"] = std(sub, steps[inw])
            out["share_days_below_5000_90d"] = mean(sub, under_5000[inw])
            out["active_minutes_mean_90d"] = mean(sub, active[inw])
            out["sleep_sd_90d"] = std(sub, sleep[inw])
            out["short_sleep_share_90d"] = mean(sub, short_sleep[inw])
        if w == 365:
            out["steps_trend_365d"] = slope_per_year(sub, steps[inw])
            out["rhr_trend_365d"] = slope_per_year(sub, rhr[inw])
    return out

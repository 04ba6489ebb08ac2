"""Wearable features over the 30, 90 and 365 days before the index date.

Members without a device have no rows: their activity features stay NaN and their coverage is
0, so the model sees "no data" rather than "no steps".
"""

from __future__ import annotations

import pandas as pd

from features.pointintime import KEY, aligned, records_before, slope_per_year
from features.registry import FeatureSpec

WINDOWS = (30, 90, 365)


def _s(name: str, unit: str, text: str, direction: int, reason: str, fmt: str = "{:,.0f}") -> FeatureSpec:
    return FeatureSpec(name, "wearable_daily", unit, text, direction, reason, fmt=fmt)


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
         f"Days with wearable data over the last {w} days: {{value}}", fmt="{:.0%}") for w in WINDOWS],
]
NAMES = [s.name for s in SPECS]


def wearable_features(wear: pd.DataFrame, index: pd.DataFrame) -> pd.DataFrame:
    cols = ["member_id", "date", "steps", "resting_hr", "sleep_minutes", "active_minutes"]
    recs = records_before(wear[cols], index, within_days=max(WINDOWS))
    recs["steps"] = recs["steps"].astype("float64")
    recs["over_8000"] = (recs["steps"] >= 8000).astype(float).where(recs["steps"].notna())
    recs["under_5000"] = (recs["steps"] < 5000).astype(float).where(recs["steps"].notna())
    recs["short_sleep"] = (recs["sleep_minutes"] < 360).astype(float).where(recs["sleep_minutes"].notna())
    parts = []
    for w in WINDOWS:
        sub = recs[recs["days_before"] <= w]
        g = sub.groupby(KEY, sort=False)
        agg = {f"steps_mean_{w}d": g["steps"].mean(), f"rhr_mean_{w}d": g["resting_hr"].mean(),
               f"wear_coverage_{w}d": g.size() / float(w)}
        if w in (90, 365):
            agg[f"steps_median_{w}d"] = g["steps"].median()
            agg[f"share_days_8000_{w}d"] = g["over_8000"].mean()
            agg[f"sleep_mean_{w}d"] = g["sleep_minutes"].mean()
        if w == 90:
            agg.update({"steps_sd_90d": g["steps"].std(), "share_days_below_5000_90d": g["under_5000"].mean(),
                        "active_minutes_mean_90d": g["active_minutes"].mean(), "sleep_sd_90d": g["sleep_minutes"].std(),
                        "short_sleep_share_90d": g["short_sleep"].mean()})
        if w == 365:
            agg["steps_trend_365d"] = slope_per_year(sub, "steps")
            agg["rhr_trend_365d"] = slope_per_year(sub, "resting_hr")
        parts.append(pd.DataFrame(agg))
    features = aligned(pd.concat(parts, axis=1), index, NAMES)
    for w in WINDOWS:
        features[f"wear_coverage_{w}d"] = features[f"wear_coverage_{w}d"].fillna(0.0)
    return features

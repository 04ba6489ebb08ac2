"""Checks of a synthetic cohort against the published targets of ../shared/epidemiology.md.

Each check is a measured figure and the range it must fall in; `chronorisk data calibrate`
prints them and the generator's calibration test asserts them. Prevalence and incidence use
the generator's truth (true disease, true onsets); recorded shares use the raw records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from training.baselines import findrisc_points

YEAR = 365.25


@dataclass(frozen=True)
class Check:
    name: str
    value: float
    low: float
    high: float

    @property
    def passed(self) -> bool:
        return bool(self.low <= self.value <= self.high)


def km_median(duration: np.ndarray, observed: np.ndarray) -> float:
    """Kaplan-Meier median of a right-censored duration (inf when the curve stays above 0.5)."""
    order = np.argsort(duration, kind="stable")
    d, e = duration[order], observed[order]
    at_risk = len(d) - np.arange(len(d))
    surv = np.cumprod(np.where(e, 1.0 - 1.0 / at_risk, 1.0))
    below = np.flatnonzero(surv <= 0.5)
    return float(d[below[0]]) if len(below) else float("inf")


def incidence_per_1000(events: np.ndarray, person_years: np.ndarray) -> float:
    return float(1000.0 * events.sum() / person_years.sum())


def _years(later: pd.Series, earlier: pd.Series) -> np.ndarray:
    return ((pd.to_datetime(later) - pd.to_datetime(earlier)).dt.days / YEAR).to_numpy(dtype=float)


def calibration_checks(truth_members: pd.DataFrame, truth_yearly: pd.DataFrame,
                       applications: pd.DataFrame, wearable_daily: pd.DataFrame,
                       index_date: date = date(2021, 1, 1), horizon_years: int = 3) -> list[Check]:
    tm = truth_members
    checks: list[Check] = []
    dm_prev = tm["diabetes_prevalent_at_enrolment"].to_numpy(bool)
    checks.append(Check("diabetes prevalence at enrolment", dm_prev.mean(), 0.08, 0.14))
    recorded = (pd.to_datetime(tm["diabetes_first_record"]) <= pd.to_datetime(tm["enrollment_start"])).fillna(False)
    checks.append(Check("share of prevalent diabetes recorded at enrolment", recorded[dm_prev].mean(), 0.40, 0.60))

    onset_after = (pd.to_datetime(tm["diabetes_onset"]) >= pd.to_datetime(tm["enrollment_start"])) & (
        pd.to_datetime(tm["diabetes_onset"]) < pd.to_datetime(tm["follow_up_end"]))
    inc = tm[onset_after.fillna(False).to_numpy(bool)]
    rec = pd.to_datetime(inc["diabetes_first_record"])
    seen = (rec.notna() & (rec < pd.to_datetime(inc["follow_up_end"]))).to_numpy(bool)
    delay = np.where(seen, _years(inc["diabetes_first_record"], inc["diabetes_onset"]),
                     _years(inc["follow_up_end"], inc["diabetes_onset"]))
    checks.append(Check("median delay from onset to first record (years)", km_median(delay, seen), 1.0, 3.0))

    free = ~dm_prev
    checks.append(Check("prediabetes prevalence among those without diabetes",
                        tm.loc[free, "prediabetes_at_enrolment"].mean(), 0.25, 0.40))
    checks.append(Check("hypertension prevalence at enrolment",
                        tm["hypertension_prevalent_at_enrolment"].mean(), 0.20, 0.35))
    bmi = tm["bmi_at_enrolment"].to_numpy(float)
    checks += [Check("BMI mean", bmi.mean(), 23.5, 25.0), Check("BMI SD", bmi.std(), 3.0, 4.0),
               Check("obese share (BMI >= 28)", (bmi >= 28).mean(), 0.08, 0.16)]
    age = tm["age_at_enrolment"].to_numpy(float)
    hb = tm["hba1c_at_enrolment"].to_numpy(float)
    checks.append(Check("HbA1c mean among those without diabetes", hb[free].mean(), 5.4, 5.7))
    hb_free = hb[free]
    skew = float(((hb_free - hb_free.mean()) ** 3).mean() / hb_free.std() ** 3)
    checks.append(Check("HbA1c skewness among those without diabetes (right-skewed)", skew, 0.0, np.inf))
    checks.append(Check("HbA1c rise 25-44 to 55-75 among those without diabetes (%)",
                        hb[free & (age >= 55)].mean() - hb[free & (age < 45)].mean(), 0.0, np.inf))
    sbp = tm["sbp_at_enrolment"].to_numpy(float)
    checks.append(Check("systolic blood pressure mean (mmHg)", sbp.mean(), 120.0, 130.0))
    checks.append(Check("SBP rise 25-44 to 55-75 (mmHg)", sbp[age >= 55].mean() - sbp[age < 45].mean(), 0.0, np.inf))

    checks += _wearable_checks(tm, wearable_daily)
    checks += _incidence_checks(tm)
    checks += _ceiling_checks(tm, truth_yearly, applications, index_date, horizon_years)
    return checks


def _wearable_checks(tm: pd.DataFrame, wear: pd.DataFrame) -> list[Check]:
    per = wear.groupby("member_id", observed=True).agg(
        days=("date", "size"), steps=("steps", "median"), rhr=("resting_hr", "mean"))
    start = pd.to_datetime(tm.set_index("member_id")["wearable_start"])
    end = pd.to_datetime(tm.set_index("member_id")["follow_up_end"])
    span_days = (end - start).dt.days.reindex(per.index).to_numpy(float)
    share = per["days"].to_numpy(float) / np.maximum(span_days, 1.0)
    return [
        Check("members with a wearable", len(per) / len(tm), 0.30, 0.50),
        Check("among wearers, median share of days with data", float(np.median(share)), 0.60, 0.85),
        Check("daily steps among wearers, median", float(per["steps"].median()), 5500.0, 7000.0),
        Check("resting heart rate among wearers, mean", float(per["rhr"].mean()), 63.0, 68.0),
        Check("resting heart rate among wearers, SD", float(per["rhr"].std()), 7.0, 9.0),
    ]


def _incidence_checks(tm: pd.DataFrame) -> list[Check]:
    """Incidence per 1,000 person-years among those free at enrolment, by band at enrolment."""
    free = tm[~tm["diabetes_prevalent_at_enrolment"].to_numpy(bool)]
    onset = pd.to_datetime(free["diabetes_onset"])
    end = pd.to_datetime(free["follow_up_end"])
    event = (onset.notna() & (onset < end)).to_numpy(bool)
    stop = onset.where(event, end)
    py = _years(stop, free["enrollment_start"])
    age = free["age_at_enrolment"].to_numpy(float)
    bmi = free["bmi_at_enrolment"].to_numpy(float)
    pre = free["prediabetes_at_enrolment"].to_numpy(bool)

    def rate(mask: np.ndarray) -> float:
        return incidence_per_1000(event[mask], py[mask])

    bands = {
        "all": (np.ones(len(free), bool), 7, 12), "age 25-44": (age < 45, 2, 6),
        "age 45-64": ((age >= 45) & (age < 65), 9, 16), "age 65-75": (age >= 65, 10, 20),
        "BMI < 24": (bmi < 24, 2, 6), "BMI 24-28": ((bmi >= 24) & (bmi < 28), 6, 12),
        "BMI >= 28": (bmi >= 28, 14, 30), "prediabetes": (pre, 15, 35), "normoglycaemic": (~pre, 1, 4),
    }
    checks = [Check(f"diabetes incidence per 1,000 PY, {name}", rate(mask), lo, hi)
              for name, (mask, lo, hi) in bands.items()]
    checks.append(Check("incidence plateau: rate 65-75 / rate 45-64", rate(age >= 65) / rate((age >= 45) & (age < 65)),
                        0.0, 1.6))
    hfree = tm[~tm["hypertension_prevalent_at_enrolment"].to_numpy(bool)]
    honset = pd.to_datetime(hfree["hypertension_onset"])
    hend = pd.to_datetime(hfree["follow_up_end"])
    hevent = (honset.notna() & (honset < hend)).to_numpy(bool)
    hpy = _years(honset.where(hevent, hend), hfree["enrollment_start"])
    checks.append(Check("hypertension incidence per 1,000 PY", incidence_per_1000(hevent, hpy), 15, 30))
    return checks


def _ceiling_checks(tm: pd.DataFrame, yearly: pd.DataFrame, applications: pd.DataFrame,
                    index_date: date, horizon: int) -> list[Check]:
    """True-risk AUC (the ceiling) and FINDRISC's AUC at one index date, against true onset."""
    t = pd.Timestamp(index_date)
    rows = yearly[pd.to_datetime(yearly["date"]) == t].merge(
        tm[["member_id", "sex", "enrollment_start", "diabetes_onset", "hypertension_onset"]], on="member_id")
    rows = rows[pd.to_datetime(rows["enrollment_start"]) <= t - pd.DateOffset(years=1)]
    end = t + pd.DateOffset(years=horizon)
    checks = []
    for disease, lo, hi in (("diabetes", 0.80, 0.88), ("hypertension", 0.75, 0.85)):
        sub = rows[~rows[f"prevalent_{disease}"].to_numpy(bool)]
        onset = pd.to_datetime(sub[f"{disease}_onset"])
        y = ((onset >= t) & (onset < end)).fillna(False).to_numpy(bool)
        checks.append(Check(f"true {horizon}-year {disease} risk AUC at {index_date}",
                            roc_auc_score(y, sub[f"true_risk_{disease}_{horizon}y"]), lo, hi))
        if disease == "diabetes":
            app = applications.set_index("member_id")
            q = sub[["member_id", "sex", "age"]].join(app, on="member_id")
            q["bmi"] = q["weight_kg"] / (q["height_cm"] / 100.0) ** 2
            checks.append(Check(f"FINDRISC AUC for {horizon}-year diabetes at {index_date}",
                                roc_auc_score(y, findrisc_points(q)), 0.68, 0.77))
    return checks


def read_cohort_for_calibration(data_dir: Path) -> dict[str, pd.DataFrame]:
    """The truth tables and the raw tables the checks need (wearables: three columns only)."""
    data_dir = Path(data_dir)
    return {
        "truth_members": pd.read_parquet(data_dir / "_truth" / "members.parquet"),
        "truth_yearly": pd.read_parquet(data_dir / "_truth" / "yearly.parquet"),
        "applications": pd.read_parquet(data_dir / "applications.parquet"),
        "wearable_daily": pd.read_parquet(data_dir / "wearable_daily.parquet",
                                          columns=["member_id", "date", "steps", "resting_hr"]),
    }

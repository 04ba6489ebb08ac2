"""The synthetic population's latent health: baseline traits, drifting trajectories, disease hazards.

Onsets are random events drawn from a hazard that follows the documented risk factors
(../shared/epidemiology.md), never a latent value crossing a threshold, so that true risk is a
probability and the AUC ceiling is reachable but not trivial. Latent trajectories are
deterministic given a member's traits, so the true risk over a horizon is a closed-form
integral of the hazard (no realised future path enters it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from chronorisk.data.units import YEAR_DAYS
from chronorisk.synthetic.profile import Profile

DAY0 = np.datetime64("2016-01-01", "D")

GRID_MONTHS = 15 * 12  # 2016-01 .. 2030-12: covers records to 2024 plus a 5-year horizon from 2025
GRID_T = np.arange(GRID_MONTHS + 1) / 12.0  # month boundaries in years since 2016-01-01
FAMILY = np.array(["none", "second_degree", "first_degree"])

# Diabetes hazard (per person-year): log-linear in the latent state. BMI's direct term is small
# because BMI also acts through the glycaemic drift; together they give a total HR of ~1.9/SD.
DM = {
    "intercept": -6.88,
    "age_slope": 0.062,       # per year up to the plateau age
    "age_plateau": 55.0,
    "age_slope_after": -0.05,
    "male": 0.22,
    "hba1c_above_5_5": 3.0,   # per % above 5.5
    "hba1c_above_5_7": 1.2,   # extra per % above 5.7: the steep rise of prediabetes
    "fpg_above_5_6": 1.2,     # per mmol/L above 5.6
    "bmi_per_sd": 0.11,
    "waist_resid_per_sd": 0.12,
    "steps_deficit_per_1000": 0.09,  # per 1,000 steps below the 8,500 plateau
    "steps_plateau": 8500.0,
    "steps_decline": 1.5,     # per unit of relative yearly decline
    "rhr_per_10": float(np.log(1.2)),
    "short_sleep": 0.18,
    "irregular_sleep": 0.12,
    "family_first": 0.5,
    "family_second": 0.2,
    "high_sbp": 0.2,
    "low_hdl": 0.18,
    "high_tg": 0.18,
    "gdm": 0.7,
    "smoker": 0.18,
    "poor_diet": 0.08,
    "age_x_bmi": -0.08,       # per decade over 50 x per BMI SD: obesity matters more when young
    "prevalence_scale": 0.45, # life-course cumulation before enrolment, relative to current hazard
}
# Hypertension hazard: dominated by the latent systolic pressure (non-remitting).
HTN = {
    "intercept": -4.0,
    "age_slope": 0.022,
    "sbp_per_10": 0.85,
    "bmi_per_sd": 0.18,
    "waist_resid_per_sd": 0.1,
    "male": 0.15,
    "family_first": 0.3,
    "family_second": 0.15,
    "glycaemia_above_5_7": 0.4,
    "activity": -0.08,
    "rhr_per_10": 0.1,
    "short_sleep": 0.15,
    "prevalence_scale": 0.36,
}


@dataclass
class Population:
    """Latent traits of one block of members (arrays of equal length), as at enrolment."""

    idx: np.ndarray
    male: np.ndarray
    age0: np.ndarray
    enrol_t: np.ndarray
    leave_t: np.ndarray
    region: np.ndarray
    fam_dm: np.ndarray      # 0 none, 1 second degree, 2 first degree
    fam_htn: np.ndarray
    smoker: np.ndarray
    gdm: np.ndarray
    cvd: np.ndarray
    diet_good: np.ndarray
    z_act: np.ndarray
    frailty: np.ndarray
    bmi0: np.ndarray
    bmi_slope: np.ndarray
    height_cm: np.ndarray
    waist_resid: np.ndarray
    steps0: np.ndarray
    steps_trend: np.ndarray
    rhr: np.ndarray
    sleep_h: np.ndarray
    sleep_irreg_min: np.ndarray
    hdl: np.ndarray
    tg: np.ndarray
    ldl: np.ndarray
    egfr0: np.ndarray
    hba1c0: np.ndarray
    fpg0: np.ndarray
    g_slope: np.ndarray
    sbp0: np.ndarray
    sbp_slope: np.ndarray
    dbp_offset: np.ndarray
    dm_excess: np.ndarray   # how far above threshold glycaemia settles after onset
    htn_excess: np.ndarray
    dm_prevalent: np.ndarray
    dm_onset_t: np.ndarray  # NaN: no onset before the end of the grid
    htn_prevalent: np.ndarray
    htn_onset_t: np.ndarray

    def __len__(self) -> int:
        return len(self.idx)


def _col(a: np.ndarray) -> np.ndarray:
    return a[:, None] if a.ndim == 1 else a


def latent_state(pop: Population, t: np.ndarray) -> dict[str, np.ndarray]:
    """Pre-onset latent state at times t (years since 2016-01-01); t is (n,) or (n, k)."""
    dt = t - _col(pop.enrol_t) if t.ndim == 2 else t - pop.enrol_t
    c = _col if t.ndim == 2 else (lambda a: a)
    bmi = np.maximum(c(pop.bmi0) + c(pop.bmi_slope) * dt, 15.0)  # drift never takes an adult below 15
    g = c(pop.hba1c0) + c(pop.g_slope) * dt + 0.03 * (bmi - c(pop.bmi0))
    return {
        "age": c(pop.age0) + dt,
        "bmi": bmi,
        "waist_resid": c(pop.waist_resid) + 0.0 * dt,
        "steps": c(pop.steps0) * np.exp(c(pop.steps_trend) * dt),
        "hba1c": g,
        "fpg": c(pop.fpg0) + 0.9 * (g - c(pop.hba1c0)),
        "sbp": c(pop.sbp0) + c(pop.sbp_slope) * dt,
    }


def diabetes_log_hazard(pop: Population, s: dict[str, np.ndarray], c=lambda a: a) -> np.ndarray:
    age, bmi_sd = s["age"], (s["bmi"] - 24.0) / 3.4
    lh = (
        DM["intercept"]
        + DM["age_slope"] * (np.minimum(age, DM["age_plateau"]) - 45.0)
        + DM["age_slope_after"] * np.maximum(age - DM["age_plateau"], 0.0)
        + DM["male"] * c(pop.male)
        + DM["hba1c_above_5_5"] * np.maximum(s["hba1c"] - 5.5, 0.0)
        + DM["hba1c_above_5_7"] * np.maximum(s["hba1c"] - 5.7, 0.0)
        + DM["fpg_above_5_6"] * np.maximum(s["fpg"] - 5.6, 0.0)
        + DM["bmi_per_sd"] * bmi_sd
        + DM["waist_resid_per_sd"] * s["waist_resid"] / 4.5
        + DM["steps_deficit_per_1000"] * np.maximum(DM["steps_plateau"] - s["steps"], 0.0) / 1000.0
        + DM["steps_decline"] * np.maximum(-c(pop.steps_trend), 0.0)
        + DM["rhr_per_10"] * (c(pop.rhr) - 65.0) / 10.0
        + DM["short_sleep"] * (c(pop.sleep_h) < 6.0)
        + DM["irregular_sleep"] * (c(pop.sleep_irreg_min) > 80.0)
        + DM["family_first"] * (c(pop.fam_dm) == 2)
        + DM["family_second"] * (c(pop.fam_dm) == 1)
        + DM["high_sbp"] * (s["sbp"] >= 140.0)
        + DM["low_hdl"] * (c(pop.hdl) < 1.0)
        + DM["high_tg"] * (c(pop.tg) > 1.7)
        + DM["gdm"] * c(pop.gdm)
        + DM["smoker"] * c(pop.smoker)
        + DM["poor_diet"] * (~c(pop.diet_good))
        + DM["age_x_bmi"] * (age - 50.0) / 10.0 * bmi_sd
    )
    return lh


def hypertension_log_hazard(pop: Population, s: dict[str, np.ndarray], c=lambda a: a) -> np.ndarray:
    return (
        HTN["intercept"]
        + HTN["age_slope"] * (s["age"] - 45.0)
        + HTN["sbp_per_10"] * (s["sbp"] - 125.0) / 10.0
        + HTN["bmi_per_sd"] * (s["bmi"] - 24.0) / 3.4
        + HTN["waist_resid_per_sd"] * s["waist_resid"] / 4.5
        + HTN["male"] * c(pop.male)
        + HTN["family_first"] * (c(pop.fam_htn) == 2)
        + HTN["family_second"] * (c(pop.fam_htn) == 1)
        + HTN["glycaemia_above_5_7"] * np.maximum(s["hba1c"] - 5.7, 0.0)
        + HTN["activity"] * c(pop.z_act)
        + HTN["rhr_per_10"] * (c(pop.rhr) - 65.0) / 10.0
        + HTN["short_sleep"] * (c(pop.sleep_h) < 6.0)
    )


StateEdit = Callable[[dict[str, np.ndarray], np.ndarray], None]


def cumulative_hazards(pop: Population, edit: StateEdit | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative hazards (n, months+1) of diabetes and hypertension on the monthly grid.

    Person-time starts at enrolment; the month of enrolment counts for its remaining fraction.
    `edit(state, t)` may change the latent state in place before the hazard is taken (the
    counterfactual scenarios of chronorisk/synthetic/counterfactual.py); without it, the generator's.
    """
    mid = (GRID_T[:-1] + GRID_T[1:]) / 2.0
    t = np.broadcast_to(mid, (len(pop), GRID_MONTHS))
    s = latent_state(pop, t)
    if edit is not None:
        edit(s, t)
    at_risk = np.clip((GRID_T[1:] - pop.enrol_t[:, None]) * 12.0, 0.0, 1.0) / 12.0
    out = []
    for log_h in (diabetes_log_hazard(pop, s, _col), hypertension_log_hazard(pop, s, _col)):
        h = np.exp(log_h) * at_risk
        out.append(np.concatenate([np.zeros((len(pop), 1)), np.cumsum(h, axis=1)], axis=1))
    return out[0], out[1]


def interpolate_cumulative(cum: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Cumulative hazard at times t (n,) by linear interpolation on the monthly grid."""
    pos = np.clip(t * 12.0, 0.0, GRID_MONTHS - 1e-9)
    i = pos.astype(np.int64)
    frac = pos - i
    rows = np.arange(len(cum))
    return cum[rows, i] * (1 - frac) + cum[rows, i + 1] * frac


def _first_crossing(cum: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Time at which the cumulative hazard first reaches e (NaN if never on the grid)."""
    hit = cum >= e[:, None]
    any_hit = hit.any(axis=1)
    j = np.where(any_hit, hit.argmax(axis=1), 1)
    rows = np.arange(len(cum))
    lo, hi = cum[rows, j - 1], cum[rows, j]
    frac = np.where(hi > lo, (e - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0)
    return np.where(any_hit, (j - 1 + frac) / 12.0, np.nan)


def draw_population(rng: np.random.Generator, first_idx: int, n: int, profile: Profile) -> Population:
    """Draw one block of members: traits at enrolment, prevalent disease and future onsets."""
    male = rng.random(n) < profile.male_share
    bands = profile.age_bands
    shares = np.array([b.share for b in bands])
    band = rng.choice(len(bands), size=n, p=shares / shares.sum())
    low = np.array([b.low for b in bands])[band]
    high = np.array([b.high for b in bands])[band]
    age0 = low + rng.random(n) * (high - low)
    e0 = (np.datetime64(profile.enrolment_start, "D") - DAY0).astype(np.int64)
    e1 = (np.datetime64(profile.enrolment_end, "D") - DAY0).astype(np.int64)
    enrol_day = rng.integers(e0, e1 + 1, size=n)
    enrol_t = enrol_day / YEAR_DAYS
    leave_t = enrol_t + rng.exponential(1.0 / profile.annual_lapse_rate, size=n)
    regions = list(profile.regions)
    rshares = np.array(list(profile.regions.values()))
    region = rng.choice(len(regions), size=n, p=rshares / rshares.sum())

    def family(shares: dict[str, float]) -> np.ndarray:
        u = rng.random(n)
        first = shares.get("first_degree", 0.0)
        second = shares.get("second_degree", 0.0)
        return np.where(u < first, 2, np.where(u < first + second, 1, 0))

    fam_dm = family(profile.family_history_diabetes)
    fam_htn = family(profile.family_history_hypertension)
    smoker = rng.random(n) < np.where(male, profile.smoker_share["male"], profile.smoker_share["female"])
    gdm = (~male) & (rng.random(n) < profile.gestational_diabetes_share)
    z_act = rng.normal(profile.activity_shift - 0.012 * (age0 - 45.0), 1.0)
    diet_good = rng.random(n) < 1.0 / (1.0 + np.exp(-(0.1 + 0.35 * z_act + 0.4 * ~male)))
    frailty = rng.normal(0.0, 1.0, size=n)

    log_bmi = (np.log(profile.bmi_median) + 0.0035 * (np.minimum(age0, 65.0) - 45.0) + 0.012 * male
               - 0.02 * z_act + rng.normal(0.0, profile.bmi_log_sd, size=n))
    bmi0 = np.exp(log_bmi)
    bmi_slope = rng.normal(0.07, 0.12, size=n) - 0.03 * z_act
    height_cm = np.where(male, rng.normal(171.0, 6.0, n), rng.normal(159.0, 5.5, n))
    waist_resid = rng.normal(0.0, 4.5, size=n)
    steps0 = np.exp(np.log(profile.steps_median) + 0.30 * z_act - 0.004 * (age0 - 45.0)
                    - 0.012 * (bmi0 - 24.0) + rng.normal(0.0, 0.15, size=n))
    steps_trend = rng.normal(-0.02, 0.05, size=n)
    rhr = np.clip(65.0 + 2.5 * ~male - 2.3 * z_act + 0.35 * (bmi0 - 24.0) + rng.normal(0.0, 7.4, size=n), 40, 120)
    sleep_h = rng.normal(7.0, 0.75, size=n) - 0.1 * male
    sleep_irreg_min = np.exp(rng.normal(np.log(55.0), 0.35, size=n))
    hdl = np.maximum(np.where(male, 1.2, 1.45) - 0.03 * (bmi0 - 24.0) + rng.normal(0.0, 0.28, n), 0.5)
    tg = np.exp(np.log(1.3) + 0.05 * (bmi0 - 24.0) + 0.14 * male + rng.normal(0.0, 0.45, n))
    ldl = np.maximum(rng.normal(2.9 + 0.012 * (age0 - 45.0), 0.7, n), 0.8)
    egfr0 = np.clip(112.0 - 0.8 * (age0 - 30.0) + rng.normal(0.0, 12.0, n), 20.0, 150.0)
    hba1c0 = (5.03 + 0.0085 * (age0 - 45.0) + 0.028 * (bmi0 - 24.0) + 0.05 * (fam_dm == 2)
              + rng.gamma(4.0, 0.13, size=n))
    fpg0 = 4.72 + 0.75 * (hba1c0 - 5.0) + 0.02 * (bmi0 - 24.0) + rng.normal(0.0, 0.33, n)
    g_slope = np.maximum(0.010 + 0.0045 * (bmi0 - 24.0) + 0.0004 * (age0 - 45.0)
                         + rng.normal(0.0, 0.008, n), 0.0)
    sbp0 = (115.5 + 0.45 * (age0 - 45.0) + 0.006 * (age0 - 45.0) ** 2 + 0.9 * (bmi0 - 24.0) + 4.5 * male
            + 1.5 * (fam_htn == 2) + rng.normal(0.0, 10.5, n))
    sbp0 = np.maximum(sbp0, 92.0)  # a latent pressure below this is not a living adult's
    sbp_slope = rng.normal(0.55, 0.4, n)
    dbp_offset = rng.normal(0.0, 5.5, n)
    cvd = rng.random(n) < 1.0 / (1.0 + np.exp(-(-4.3 + 0.07 * (age0 - 50.0) + 0.5 * male
                                                 + 0.02 * (sbp0 - 125.0))))

    pop = Population(
        idx=np.arange(first_idx, first_idx + n), male=male, age0=age0, enrol_t=enrol_t, leave_t=leave_t,
        region=region, fam_dm=fam_dm, fam_htn=fam_htn, smoker=smoker, gdm=gdm, cvd=cvd,
        diet_good=diet_good, z_act=z_act, frailty=frailty, bmi0=bmi0, bmi_slope=bmi_slope,
        height_cm=height_cm, waist_resid=waist_resid, steps0=steps0, steps_trend=steps_trend, rhr=rhr,
        sleep_h=sleep_h, sleep_irreg_min=sleep_irreg_min, hdl=hdl, tg=tg, ldl=ldl, egfr0=egfr0,
        hba1c0=hba1c0, fpg0=fpg0, g_slope=g_slope, sbp0=sbp0, sbp_slope=sbp_slope, dbp_offset=dbp_offset,
        dm_excess=rng.exponential(0.7, n), htn_excess=rng.exponential(9.0, n),
        dm_prevalent=np.zeros(n, bool), dm_onset_t=np.full(n, np.nan),
        htn_prevalent=np.zeros(n, bool), htn_onset_t=np.full(n, np.nan),
    )
    _draw_onsets(rng, pop)
    return pop


def _draw_onsets(rng: np.random.Generator, pop: Population) -> None:
    """Prevalent disease at enrolment (life-course cumulation of the same hazard), then incident onsets."""
    n = len(pop)
    s0 = latent_state(pop, pop.enrol_t)
    years_at_risk = np.maximum(pop.age0 - 20.0, 0.0)
    for disease, log_h, coef in (
        ("dm", diabetes_log_hazard(pop, s0), DM),
        ("htn", hypertension_log_hazard(pop, s0), HTN),
    ):
        p_prev = 1.0 - np.exp(-coef["prevalence_scale"] * np.exp(log_h) * years_at_risk)
        prevalent = rng.random(n) < p_prev
        back = rng.random(n) * np.minimum(years_at_risk, 12.0)
        setattr(pop, f"{disease}_prevalent", prevalent)
        setattr(pop, f"{disease}_onset_t", np.where(prevalent, pop.enrol_t - back, np.nan))
    h_dm, h_htn = cumulative_hazards(pop)
    for disease, cum in (("dm", h_dm), ("htn", h_htn)):
        e = rng.exponential(1.0, size=n)
        incident = _first_crossing(cum, e)
        prevalent = getattr(pop, f"{disease}_prevalent")
        setattr(pop, f"{disease}_onset_t", np.where(prevalent, getattr(pop, f"{disease}_onset_t"), incident))


def true_risk(cum: np.ndarray, t: np.ndarray, horizon_years: float) -> np.ndarray:
    """Probability of onset in [t, t + horizon) for a member free at t, from the latent hazard."""
    return 1.0 - np.exp(-(interpolate_cumulative(cum, t + horizon_years) - interpolate_cumulative(cum, t)))


def observed_glycaemia(pop: Population, t: np.ndarray, dx_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Latent HbA1c (%) and fasting glucose (mmol/L) at times t (n,), after onset and treatment."""
    s = latent_state(pop, t)
    onset = ~np.isnan(pop.dm_onset_t) & (t >= np.nan_to_num(pop.dm_onset_t, nan=np.inf))
    treated = t >= np.nan_to_num(dx_t, nan=np.inf)
    excess = np.where(treated, 0.2 + 0.5 * pop.dm_excess, pop.dm_excess)
    # After onset glycaemia climbs past the diagnostic thresholds over about 18 months.
    ramp = np.clip((t - np.nan_to_num(pop.dm_onset_t, nan=0.0)) / 1.5, 0.0, 1.0)
    g = np.where(onset, s["hba1c"] + np.maximum(6.55 + excess - s["hba1c"], 0.0) * ramp, s["hba1c"])
    f = np.where(onset, s["fpg"] + np.maximum(7.05 + 1.4 * excess - s["fpg"], 0.0) * ramp, s["fpg"])
    return g, f


def observed_pressure(pop: Population, t: np.ndarray, dx_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Latent systolic and diastolic pressure (mmHg) at times t (n,), after onset and treatment."""
    s = latent_state(pop, t)
    onset = ~np.isnan(pop.htn_onset_t) & (t >= np.nan_to_num(pop.htn_onset_t, nan=np.inf))
    sbp = np.where(onset, np.maximum(s["sbp"], 141.0 + pop.htn_excess), s["sbp"])
    treated = t >= np.nan_to_num(dx_t, nan=np.inf)
    sbp = np.where(treated & onset, sbp - 10.0, sbp)
    dbp = 0.55 * sbp + 12.0 + pop.dbp_offset
    return sbp, dbp


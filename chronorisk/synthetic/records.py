"""What an insurer would see of the synthetic population: the five raw tables.

Records are noisy, partial views of the latent state: consultations at a rate that rises with
age and ill health, labs in only some member-years, diagnoses recorded with a delay after
onset, wearables for a minority with gaps. Tables are built as Arrow tables in one vectorised
pass per block of members; no Python loop runs per record.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chronorisk.data.units import HBA1C_IFCC_OFFSET_PCT, HBA1C_IFCC_SLOPE, MG_DL_PER_MMOL_L, YEAR_DAYS
from chronorisk.synthetic.population import (
    DAY0,
    FAMILY,
    Population,
    latent_state,
    observed_glycaemia,
    observed_pressure,
)
from chronorisk.synthetic.profile import Profile

EPOCH_OFFSET = int((DAY0 - np.datetime64("1970-01-01", "D")).astype(np.int64))
ACUTE = [("J06.9", "J01CA04"), ("K29.7", "A02BC01"), ("M54.5", "M01AE01"), ("R51", "N02BE01"),
         ("J20.9", "R05CB01"), ("L30.9", "D07AC01"), ("H10.9", "S01AA01"), ("N39.0", "J01MA02"),
         ("R10.4", "A03FA01"), ("Z00.0", None)]
ANTIHYPERTENSIVES = np.array(["C09AA02", "C08CA01", "C03AA03", "C07AB02", "C09CA01"])


def days(t: np.ndarray) -> np.ndarray:
    """Years since 2016-01-01 to whole days since 2016-01-01."""
    return np.floor(t * YEAR_DAYS + 1e-9).astype(np.int64)


def date_array(day: np.ndarray, present: np.ndarray | None = None) -> pa.Array:
    """Days since 2016-01-01 as an Arrow date column; null where `present` is false."""
    mask = None if present is None else ~np.asarray(present, dtype=bool)
    return pa.array((day + EPOCH_OFFSET).astype(np.int32), type=pa.date32(), mask=mask)


def member_ids(idx: np.ndarray) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(idx, pa.int64()), pa.string()), width=8, padding="0")
    return pc.binary_join_element_wise("M", digits, "")


def stop_t(pop: Population, profile: Profile) -> np.ndarray:
    """End of a member's records: leaving, or the day after the extract date."""
    extract_end = (np.datetime64(profile.extract_date, "D") - DAY0).astype(np.int64) + 1
    return np.minimum(pop.leave_t, extract_end / YEAR_DAYS)


def waist_at(pop: Population, bmi: np.ndarray) -> np.ndarray:
    return np.clip(np.where(pop.male, 2.55 * bmi + 21.0, 2.45 * bmi + 15.0) + pop.waist_resid, 52.0, 170.0)


def _strings(mask: np.ndarray, value: str | np.ndarray) -> pa.Array:
    """A string array holding value where mask is true and null elsewhere."""
    vals = np.array(np.broadcast_to(np.asarray(value, dtype=object), mask.shape))
    return pa.array(vals, type=pa.string(), mask=~mask)


def _join(parts: list[pa.Array]) -> pa.Array:
    """";"-join the non-null parts of each row ("" when none); Arrow's own null skipping drops
    all-null rows (pyarrow 25), so each present part is prefixed and the first ";" trimmed."""
    prefixed = [pc.fill_null(pc.binary_join_element_wise(";", part, ""), "") for part in parts]
    return pc.utf8_ltrim(pc.binary_join_element_wise(*prefixed, ""), characters=";")


def members_table(rng: np.random.Generator, pop: Population, profile: Profile) -> pa.Table:
    enrol_day = days(pop.enrol_t)
    birth_day = enrol_day - np.floor(pop.age0 * YEAR_DAYS).astype(np.int64)
    extract_day = (np.datetime64(profile.extract_date, "D") - DAY0).astype(np.int64)
    leave_day = days(pop.leave_t)
    regions = np.array(list(profile.regions))
    known_fam = rng.random(len(pop)) < 0.85
    return pa.table({
        "member_id": member_ids(pop.idx),
        "birth_date": date_array(birth_day),
        "sex": pa.array(np.where(pop.male, "M", "F"), pa.string()),
        "region": pa.array(regions[pop.region], pa.string()),
        "enrollment_start": date_array(enrol_day),
        "enrollment_end": date_array(leave_day, leave_day <= extract_day),
        "family_history_diabetes": _strings(known_fam, FAMILY[pop.fam_dm]),
        "family_history_hypertension": _strings(known_fam, FAMILY[pop.fam_htn]),
    })


def applications_table(rng: np.random.Generator, pop: Population, dm_dx_t: np.ndarray,
                       htn_dx_t: np.ndarray) -> pa.Table:
    """The application questionnaire, answered from the latent state with optimistic errors."""
    n = len(pop)
    app_t = pop.enrol_t - rng.integers(5, 60, size=n) / YEAR_DAYS
    s = latent_state(pop, pop.enrol_t)
    active_true = pop.z_act > 0.1
    told_high = (dm_dx_t <= pop.enrol_t) | pop.gdm | (
        ((s["hba1c"] >= 5.7) | (s["fpg"] >= 5.6)) & (rng.random(n) < 0.3))
    bp_treated = htn_dx_t <= pop.enrol_t
    fam = pop.fam_dm.copy()
    u = rng.random(n)
    fam = np.where((fam == 2) & (u > 0.85), 0, np.where((fam == 1) & (u > 0.55), 0, fam))
    bmi = s["bmi"]
    weight = bmi * (pop.height_cm / 100.0) ** 2
    return pa.table({
        "member_id": member_ids(pop.idx),
        "application_date": date_array(days(app_t)),
        "active_30min": pa.array(active_true | (rng.random(n) < 0.25)),
        "daily_veg_fruit": pa.array(pop.diet_good | (rng.random(n) < 0.3)),
        "ever_bp_treatment": pa.array(bp_treated & (rng.random(n) < 0.9)),
        "ever_high_glucose": pa.array(told_high & (rng.random(n) < 0.85)),
        "family_history": pa.array(FAMILY[fam], pa.string()),
        "waist_cm": pa.array(np.round(waist_at(pop, bmi) - 1.5 + rng.normal(0, 3.0, n))),
        "smoker": pa.array(pop.smoker & (rng.random(n) < 0.85)),
        "height_cm": pa.array(np.round(pop.height_cm + 0.5 + rng.normal(0, 1.0, n))),
        "weight_kg": pa.array(np.round(weight - 1.2 + rng.normal(0, 1.0, n), 1)),
    })


@dataclass
class ClinicalRecords:
    consultations: pa.Table
    lab_results: pa.Table
    dm_dx_t: np.ndarray   # first recorded diabetes (code or lab), NaN if never
    htn_dx_t: np.ndarray


def _detect_first(member: np.ndarray, t: np.ndarray, flag: np.ndarray, n: int) -> np.ndarray:
    first = np.full(n, np.inf)
    np.minimum.at(first, member[flag], t[flag])
    return first


def clinical_records(rng: np.random.Generator, pop: Population, profile: Profile) -> ClinicalRecords:
    """Consultations (codes, medications, vitals) and lab results, with delayed diagnoses."""
    n = len(pop)
    t_stop = stop_t(pop, profile)
    span = np.maximum(t_stop - pop.enrol_t, 0.0)
    dm_prev_dx = pop.dm_prevalent & (rng.random(n) < np.clip(
        0.2 + 0.06 * (pop.enrol_t - np.nan_to_num(pop.dm_onset_t)), 0.0, 0.85))
    htn_prev_dx = pop.htn_prevalent & (rng.random(n) < 0.55)
    rate = 2.3 * np.exp(0.012 * (pop.age0 - 45.0) + 0.25 * ~pop.male + 0.3 * pop.frailty
                        + 0.3 * pop.dm_prevalent + 0.2 * pop.htn_prevalent + 0.3 * pop.cvd)
    count = rng.poisson(rate * span)
    intake = (dm_prev_dx | htn_prev_dx | pop.cvd | pop.gdm) & (span > 0)
    m = np.concatenate([np.repeat(np.arange(n), count), np.flatnonzero(intake)])
    t = np.concatenate([np.repeat(pop.enrol_t, count) + rng.random(count.sum()) * np.repeat(span, count),
                        pop.enrol_t[intake]])
    is_intake = np.concatenate([np.zeros(count.sum(), bool), np.ones(intake.sum(), bool)])
    order = np.lexsort((t, m))
    m, t, is_intake = m[order], t[order], is_intake[order]
    k = len(m)
    channel = np.where(is_intake, 1, rng.choice(3, size=k, p=[0.36, 0.58, 0.06]))  # online, outpt, inpt

    # Diabetes: detected at a consultation after onset, or by a lab at or above the threshold.
    onset = np.nan_to_num(pop.dm_onset_t, nan=np.inf)
    p_det = np.array([0.02, 0.06, 0.25])[channel]
    det_consult = (t >= onset[m]) & (rng.random(k) < p_det)
    det_consult |= is_intake & dm_prev_dx[m]
    first_consult = _detect_first(m, t, det_consult, n)

    labs = _health_check_labs(rng, pop, t_stop, profile)
    lm, lt = labs["member"], labs["t"]
    g_u, f_u = observed_glycaemia(pop_rows(pop, lm), lt, np.full(len(lm), np.inf))
    g_meas = g_u + labs["noise_g"]
    f_meas = f_u * (1.0 + labs["noise_f"])
    lab_hit = ((labs["has_g"] & (g_meas >= 6.5)) | (labs["has_f"] & (f_meas >= 7.0))) & (lt >= onset[lm])
    dm_dx = np.minimum(first_consult, _detect_first(lm, lt, lab_hit, n))

    # Hypertension: a high reading noticed, or symptoms, after onset.
    has_bp = rng.random(k) < np.array([0.0, 0.7, 1.0])[channel]
    sbp_u, dbp_u = observed_pressure(pop_rows(pop, m), t, np.full(k, np.inf))
    noise_s, noise_d = rng.normal(0, 8.0, k), rng.normal(0, 6.0, k)
    high = has_bp & ((sbp_u + noise_s >= 140) | (dbp_u + noise_d >= 90))
    htn_onset = np.nan_to_num(pop.htn_onset_t, nan=np.inf)
    det_htn = (high & (rng.random(k) < 0.35)) | ((t >= htn_onset[m]) & (rng.random(k) < 0.04))
    det_htn |= is_intake & htn_prev_dx[m]
    htn_dx = _detect_first(m, t, det_htn, n)

    sbp_o, dbp_o = observed_pressure(pop_rows(pop, m), t, htn_dx[m])
    s = latent_state(pop_rows(pop, m), t)
    g_o, _ = observed_glycaemia(pop_rows(pop, m), t, dm_dx[m])
    consultations = _consultation_table(rng, pop, m, t, channel, is_intake, s, g_o, sbp_o + noise_s,
                                        dbp_o + noise_d, has_bp, dm_dx, htn_dx, det_consult)
    lab_table = _lab_table(rng, pop, labs, dm_dx, m[det_consult], t[det_consult], t_stop)
    return ClinicalRecords(consultations, lab_table, np.where(np.isinf(dm_dx), np.nan, dm_dx),
                           np.where(np.isinf(htn_dx), np.nan, htn_dx))


def pop_rows(pop: Population, rows: np.ndarray) -> Population:
    """The population indexed by rows (one entry per record), so latent functions vectorise."""
    return Population(**{name: getattr(pop, name)[rows] for name in pop.__dataclass_fields__})


def _health_check_labs(rng: np.random.Generator, pop: Population, t_stop: np.ndarray,
                       profile: Profile) -> dict[str, np.ndarray]:
    """One lab panel in a share of member-years, more often for older and sicker members."""
    n = len(pop)
    first_year = np.floor(pop.enrol_t).astype(np.int64)
    last_year = np.floor(np.maximum(t_stop - 1e-9, pop.enrol_t)).astype(np.int64)
    years = last_year - first_year + 1
    mm = np.repeat(np.arange(n), years)
    offset = np.arange(len(mm)) - np.repeat(np.cumsum(years) - years, years)
    lo = np.maximum(np.repeat(first_year, years) + offset, pop.enrol_t[mm])
    hi = np.minimum(np.repeat(first_year, years) + offset + 1.0, t_stop[mm])
    base = np.log(profile.lab_share / (1.0 - profile.lab_share))
    p = 1.0 / (1.0 + np.exp(-(base + 0.02 * (pop.age0[mm] - 45.0) + 0.25 * pop.frailty[mm])))
    # A member-year only partly on the books (the enrolment year, the year of leaving, and the sliver
    # of a 365.25-day year that ends on the extract date) gets its panel with the covered share of the
    # year's chance: a full chance there put a third of a year's panels on 2024-12-31.
    take = (hi > lo) & (rng.random(len(mm)) < p * np.clip(hi - lo, 0.0, 1.0))
    mm, lo, hi = mm[take], lo[take], hi[take]
    size = len(mm)
    return {
        "member": mm,
        "t": lo + rng.random(size) * (hi - lo),
        "has_g": rng.random(size) < 0.75,
        "has_f": rng.random(size) < 0.9,
        "has_lipids": rng.random(size) < 0.8,
        "has_egfr": rng.random(size) < 0.6,
        "noise_g": rng.normal(0.0, 0.1, size),
        "noise_f": rng.normal(0.0, 0.06, size),
    }


def _consultation_table(rng: np.random.Generator, pop: Population, m: np.ndarray, t: np.ndarray,
                        channel: np.ndarray, is_intake: np.ndarray, s: dict[str, np.ndarray],
                        g: np.ndarray, sbp: np.ndarray, dbp: np.ndarray, has_bp: np.ndarray,
                        dm_dx: np.ndarray, htn_dx: np.ndarray, det_consult: np.ndarray) -> pa.Table:
    k = len(m)
    after_dm = t >= dm_dx[m]
    after_htn = t >= htn_dx[m]
    dyslip = (pop.tg[m] > 2.3) | (pop.ldl[m] > 4.1) | (pop.hdl[m] < 0.9)
    acute = rng.integers(0, len(ACUTE), size=k)
    has_acute = ~is_intake & (rng.random(k) < 0.8)
    acute_icd = np.array([a for a, _ in ACUTE], dtype=object)[acute]
    acute_atc = np.array([b for _, b in ACUTE], dtype=object)[acute]
    icd = _join([
        _strings(has_acute, acute_icd),
        _strings(det_consult | (after_dm & (rng.random(k) < 0.7)), "E11.9"),
        _strings(~after_dm & (g >= 5.7) & (rng.random(k) < 0.06), "R73.0"),
        _strings(after_htn & (rng.random(k) < 0.7), "I10"),
        _strings(dyslip & (rng.random(k) < 0.15), "E78.5"),
        _strings((s["bmi"] >= 28) & (rng.random(k) < 0.08), "E66.9"),
        _strings(pop.cvd[m] & (is_intake | (rng.random(k) < 0.3)), "I25.1"),
        _strings(pop.gdm[m] & (is_intake | (rng.random(k) < 0.05)), "O24.4"),
    ])
    atc = _join([
        _strings(has_acute & (rng.random(k) < 0.5) & (acute_atc != None), acute_atc),  # noqa: E711
        _strings(after_dm & (rng.random(k) < 0.75), "A10BA02"),
        _strings(after_htn & (rng.random(k) < 0.8), ANTIHYPERTENSIVES[pop.idx[m] % len(ANTIHYPERTENSIVES)]),
        _strings(dyslip & (rng.random(k) < 0.1), "C10AA05"),
    ])
    in_person = channel > 0
    w_p = np.where(in_person, np.where(channel == 2, 0.9, 0.6), 0.1)
    has_w = rng.random(k) < w_p
    has_h = in_person & (rng.random(k) < np.where(channel == 2, 0.6, 0.25))
    has_waist = in_person & (rng.random(k) < 0.2)
    weight = s["bmi"] * (pop.height_cm[m] / 100.0) ** 2 + rng.normal(0, 0.7, k)
    waist = waist_at(pop_rows(pop, m), s["bmi"]) + rng.normal(0, 2.0, k)
    smoke_rec = in_person & (rng.random(k) < 0.25)
    smoke = np.where(pop.smoker[m], "current", np.where(rng.random(k) < 0.1, "former", "never"))
    ids = consultation_ids(int(pop.idx[0]), k)
    return pa.table({
        "consultation_id": ids,
        "member_id": member_ids(pop.idx[m]),
        "date": date_array(days(t)),
        "channel": pa.array(np.array(["online", "outpatient", "inpatient"])[channel], pa.string()),
        "icd10_codes": icd,
        "atc_codes": atc,
        "weight_kg": pa.array(np.where(has_w, np.round(weight, 1), np.nan), from_pandas=True),
        "height_cm": pa.array(np.where(has_h, np.round(pop.height_cm[m] + rng.normal(0, 0.5, k), 1), np.nan),
                              from_pandas=True),
        "waist_cm": pa.array(np.where(has_waist, np.round(waist * 2) / 2, np.nan), from_pandas=True),
        "sbp_mmhg": pa.array(np.where(has_bp, np.round(np.clip(sbp, 80, 250)), np.nan), from_pandas=True),
        "dbp_mmhg": pa.array(np.where(has_bp, np.round(np.clip(np.minimum(dbp, sbp - 10), 45, 150)), np.nan),
                             from_pandas=True),
        "smoking_status": _strings(smoke_rec, smoke),
    })


def consultation_ids(first_member: int, k: int) -> pa.Array:
    """Unique consultation ids that do not reveal the member: a bijective scramble of (block, ordinal).

    Multiplying by an odd constant modulo 2**64 is a bijection, so distinct (block, ordinal)
    pairs never collide, yet neighbouring ids say nothing about which member they belong to.
    """
    raw = (np.uint64(first_member) << np.uint64(24)) + np.arange(k, dtype=np.uint64)
    with np.errstate(over="ignore"):
        scrambled = (raw * np.uint64(0x9E3779B97F4A7C15)) ^ np.uint64(0x5DEECE66D2B7E151)
    hexed = pc.utf8_lpad(pa.array(np.char.mod("%x", scrambled.astype(np.uint64)).astype(object), pa.string()),
                         width=16, padding="0")
    return pc.binary_join_element_wise("C", hexed, "")


def _lab_table(rng: np.random.Generator, pop: Population, labs: dict[str, np.ndarray], dm_dx: np.ndarray,
               det_m: np.ndarray, det_t: np.ndarray, t_stop: np.ndarray) -> pa.Table:
    """Lab results in long format and mixed units; monitoring HbA1c after a diabetes diagnosis."""
    n = len(pop)
    span = np.where(np.isfinite(dm_dx), np.maximum(t_stop - dm_dx, 0.0), 0.0)
    mon = rng.poisson(1.5 * span)
    mon_m = np.repeat(np.arange(n), mon)
    mon_t = np.repeat(np.nan_to_num(dm_dx, posinf=0.0), mon) + rng.random(mon.sum()) * np.repeat(span, mon)
    frames: list[tuple[np.ndarray, np.ndarray, str, np.ndarray]] = []
    lm, lt = labs["member"], labs["t"]
    g, f = observed_glycaemia(pop_rows(pop, lm), lt, dm_dx[lm])
    frames.append((lm[labs["has_g"]], lt[labs["has_g"]], "hba1c", (g + labs["noise_g"])[labs["has_g"]]))
    frames.append((lm[labs["has_f"]], lt[labs["has_f"]], "fasting_glucose",
                   (f * (1 + labs["noise_f"]))[labs["has_f"]]))
    lip, eg = labs["has_lipids"], labs["has_egfr"]
    for lipid, latent, cv in (("total_cholesterol", pop.ldl + pop.hdl + pop.tg / 2.2, 0.06),
                             ("ldl", pop.ldl, 0.08), ("hdl", pop.hdl, 0.07), ("triglycerides", pop.tg, 0.1)):
        frames.append((lm[lip], lt[lip], lipid, latent[lm[lip]] * (1 + rng.normal(0, cv, lip.sum()))))
    egfr = pop.egfr0[lm] - 0.9 * (lt - pop.enrol_t[lm]) + rng.normal(0, 5.0, len(lm))
    frames.append((lm[eg], lt[eg], "egfr", np.clip(egfr[eg], 5.0, 180.0)))
    for mm, tt in ((det_m, det_t), (mon_m, mon_t)):
        gg, ff = observed_glycaemia(pop_rows(pop, mm), tt, np.where(tt > dm_dx[mm], dm_dx[mm], np.inf))
        frames.append((mm, tt, "hba1c", gg + rng.normal(0, 0.1, len(mm))))
        if mm is det_m:
            frames.append((mm, tt, "fasting_glucose", ff * (1 + rng.normal(0, 0.06, len(mm)))))
    member = np.concatenate([x[0] for x in frames])
    day = days(np.concatenate([x[1] for x in frames]))
    test = np.concatenate([np.full(len(x[0]), x[2], dtype=object) for x in frames])
    value = np.concatenate([x[3] for x in frames])
    test_code = np.unique(test, return_inverse=True)[1]
    order = np.lexsort((test_code, day, member))
    member, day, test, value, test_code = member[order], day[order], test[order], value[order], test_code[order]
    keep = np.r_[True, (np.diff(member) != 0) | (np.diff(day) != 0) | (np.diff(test_code) != 0)]
    member, day, test, value = member[keep], day[keep], test[keep], value[keep]
    value, unit = _report_units(rng, test, value)
    return pa.table({
        "member_id": member_ids(pop.idx[member]),
        "date": date_array(day),
        "test": pa.array(test, pa.string()),
        "value": pa.array(value),
        "unit": pa.array(unit, pa.string()),
    })


def _report_units(rng: np.random.Generator, test: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labs report in their own units: some HbA1c in mmol/mol, some glucose and lipids in mg/dL."""
    u = rng.random(len(test))
    out = value.copy()
    unit = np.full(len(test), "mmol/L", dtype=object)
    hb = test == "hba1c"
    ifcc = hb & (u < 0.12)
    unit[hb] = "%"
    out[hb] = np.round(value[hb], 1)
    unit[ifcc] = "mmol/mol"
    out[ifcc] = np.round(HBA1C_IFCC_SLOPE * (value[ifcc] - HBA1C_IFCC_OFFSET_PCT))
    for name, factor in MG_DL_PER_MMOL_L.items():  # the generator draws no OGTT, so its rows select nothing
        sel = test == name
        mg = sel & (u < 0.1)
        out[sel & ~mg] = np.round(value[sel & ~mg], 2)
        unit[mg] = "mg/dL"
        out[mg] = np.round(value[mg] * factor)
    eg = test == "egfr"
    unit[eg] = "mL/min/1.73m2"
    out[eg] = np.round(value[eg])
    return out, unit

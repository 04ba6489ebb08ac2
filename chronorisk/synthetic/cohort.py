"""`chronorisk data synth`: generate a synthetic cohort, streaming it to disk block by block.

Members are made in fixed blocks of BLOCK members, block i seeded by
`SeedSequence(seed).spawn(...)[i]`, so the bytes depend only on (seed, members, profile): not
on the number of workers, and the first members of a large cohort equal those of a small one.
Memory is bounded by the blocks in flight, not by the number of members.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from tqdm import tqdm

from chronorisk.data.contracts import TABLES
from chronorisk.data.units import YEAR_DAYS
from chronorisk.synthetic.population import (
    DAY0,
    Population,
    cumulative_hazards,
    draw_population,
    observed_glycaemia,
    observed_pressure,
    true_risk,
)
from chronorisk.synthetic.profile import Profile, load_profile
from chronorisk.synthetic.records import (
    applications_table,
    clinical_records,
    date_array,
    days,
    member_ids,
    members_table,
    pop_rows,
    stop_t,
)
from chronorisk.synthetic.wearables import wearables_table

__all__ = ["BLOCK", "RAW_TABLES", "SynthSummary", "load_profile", "simulate_block", "synthesize"]

BLOCK = 1000
GENERATOR_VERSION = "2"  # 2: lab panels of partly covered member-years scaled by the covered share
RAW_TABLES = TABLES  # the contracts' tables, the ones the generator writes
HORIZONS = (1, 3, 5)


@dataclass
class SynthSummary:
    out_dir: Path
    rows: dict[str, int] = field(default_factory=dict)


def block_rngs(seed: int, block: int) -> list[np.random.Generator]:
    """The block's five streams (population, clinical, applications, wearables, members): one place,
    so the counterfactual truth redraws a block's population exactly as it was generated."""
    seq = np.random.SeedSequence(seed).spawn(block + 1)[block]
    return [np.random.default_rng(s) for s in seq.spawn(5)]


def simulate_block(seed: int, block: int, n: int, profile: Profile) -> dict[str, pa.Table]:
    """All raw tables and truth for members block*BLOCK .. block*BLOCK + n - 1."""
    rng_pop, rng_clin, rng_app, rng_wear, rng_mem = block_rngs(seed, block)
    pop = draw_population(rng_pop, block * BLOCK, n, profile)
    clinical = clinical_records(rng_clin, pop, profile)
    wear, device_start = wearables_table(rng_wear, pop, profile)
    tables = {
        "members": members_table(rng_mem, pop, profile),
        "applications": applications_table(rng_app, pop, clinical.dm_dx_t, clinical.htn_dx_t),
        "consultations": clinical.consultations,
        "lab_results": clinical.lab_results,
        "wearable_daily": wear,
    }
    tables.update(_truth(pop, profile, clinical.dm_dx_t, clinical.htn_dx_t, device_start))
    return tables


def _optional_dates(t: np.ndarray) -> pa.Array:
    return date_array(days(np.nan_to_num(t, nan=0.0)), ~np.isnan(t))


def _truth(pop: Population, profile: Profile, dm_dx: np.ndarray, htn_dx: np.ndarray,
           device_start: np.ndarray) -> dict[str, pa.Table]:
    """The generator's truth: per member, and per (member, 1 January) with true risk by horizon."""
    cum_dm, cum_htn = cumulative_hazards(pop)
    t_stop = stop_t(pop, profile)
    g0, f0 = observed_glycaemia(pop, pop.enrol_t, dm_dx)
    s0, _ = observed_pressure(pop, pop.enrol_t, htn_dx)
    bmi0 = pop.bmi0
    members = pa.table({
        "member_id": member_ids(pop.idx),
        "sex": pa.array(np.where(pop.male, "M", "F")),
        "age_at_enrolment": pa.array(pop.age0),
        "enrollment_start": date_array(days(pop.enrol_t)),
        "follow_up_end": date_array(days(t_stop)),
        "bmi_at_enrolment": pa.array(bmi0),
        "hba1c_at_enrolment": pa.array(g0),
        "fasting_glucose_at_enrolment": pa.array(f0),
        "sbp_at_enrolment": pa.array(s0),
        "prediabetes_at_enrolment": pa.array(~pop.dm_prevalent & ((g0 >= 5.7) | (f0 >= 5.6))),
        "diabetes_prevalent_at_enrolment": pa.array(pop.dm_prevalent),
        "diabetes_onset": _optional_dates(pop.dm_onset_t),
        "diabetes_first_record": _optional_dates(dm_dx),
        "hypertension_prevalent_at_enrolment": pa.array(pop.htn_prevalent),
        "hypertension_onset": _optional_dates(pop.htn_onset_t),
        "hypertension_first_record": _optional_dates(htn_dx),
        "wearable_start": date_array(np.maximum(device_start, 0), device_start >= 0),
    })
    first_year = int(str(profile.enrolment_start)[:4])
    last_year = profile.extract_date.year
    rows: dict[str, list[np.ndarray]] = {}
    for year in range(first_year, last_year + 1):
        t_y = (np.datetime64(date(year, 1, 1), "D") - DAY0).astype(np.int64) / YEAR_DAYS
        sel = np.flatnonzero((pop.enrol_t <= t_y) & (t_y < pop.leave_t))
        if len(sel) == 0:
            continue
        ty = np.full(len(sel), t_y)
        sub = pop_rows(pop, sel)
        g, f = observed_glycaemia(sub, ty, dm_dx[sel])
        sbp, _ = observed_pressure(sub, ty, htn_dx[sel])
        dm_prev = np.nan_to_num(pop.dm_onset_t[sel], nan=np.inf) < t_y
        htn_prev = np.nan_to_num(pop.htn_onset_t[sel], nan=np.inf) < t_y
        cols = {
            "member_idx": pop.idx[sel], "day": np.full(len(sel), days(np.array([t_y]))[0]),
            "age": sub.age0 + (t_y - sub.enrol_t), "prevalent_diabetes": dm_prev,
            "prevalent_hypertension": htn_prev, "hba1c": g, "fasting_glucose": f,
            "bmi": sub.bmi0 + sub.bmi_slope * (t_y - sub.enrol_t), "sbp": sbp,
        }
        for h in HORIZONS:
            cols[f"true_risk_diabetes_{h}y"] = np.where(dm_prev, np.nan, true_risk(cum_dm[sel], ty, h))
            cols[f"true_risk_hypertension_{h}y"] = np.where(htn_prev, np.nan, true_risk(cum_htn[sel], ty, h))
        for key, val in cols.items():
            rows.setdefault(key, []).append(val)
    yearly = {k: np.concatenate(v) for k, v in rows.items()}
    idx = yearly.pop("member_idx")
    day = yearly.pop("day")
    yearly_table = pa.table({"member_id": member_ids(idx), "date": date_array(day),
                             **{k: pa.array(v, from_pandas=True) for k, v in yearly.items()}})
    order = np.lexsort((day, idx))
    return {"_truth/members": members, "_truth/yearly": yearly_table.take(pa.array(order))}


def _blocks(members: int) -> Iterator[tuple[int, int]]:
    for block in range((members + BLOCK - 1) // BLOCK):
        yield block, min(BLOCK, members - block * BLOCK)


class _Writers:
    """One streaming writer per table; the first block fixes each table's schema."""

    def __init__(self, out_dir: Path, file_format: str) -> None:
        self.out_dir, self.file_format = out_dir, file_format
        self.writers: dict[str, pq.ParquetWriter | pacsv.CSVWriter] = {}
        self.rows: dict[str, int] = {}

    def write(self, name: str, table: pa.Table) -> None:
        if name not in self.writers:
            truth = name.startswith("_")
            path = self.out_dir / f"{name}.{'parquet' if truth or self.file_format == 'parquet' else 'csv'}"
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix == ".parquet":
                self.writers[name] = pq.ParquetWriter(path, table.schema, compression="zstd")
            else:
                self.writers[name] = pacsv.CSVWriter(path, table.schema)
            self.rows[name] = 0
        self.writers[name].write_table(table)
        self.rows[name] += table.num_rows

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


def synthesize(members: int, seed: int, out_dir: Path, profile: Profile, *, workers: int = 1,
               file_format: str = "parquet", progress: bool = False) -> SynthSummary:
    """Write the five raw tables, `_truth/` and `_manifest.json` to out_dir (replacing its tables)."""
    if members < 1:
        raise ValueError(f"members must be at least 1, got {members}")
    if file_format not in ("parquet", "csv"):
        raise ValueError(f"format must be parquet or csv, got {file_format!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in [*(out_dir / f"{t}.{ext}" for t in RAW_TABLES for ext in ("parquet", "csv")),
                  out_dir / "_manifest.json"]:
        stale.unlink(missing_ok=True)
    for stale_dir in ("_truth", "_rejected"):
        shutil.rmtree(out_dir / stale_dir, ignore_errors=True)
    writers = _Writers(out_dir, file_format)
    blocks = list(_blocks(members))
    bar = tqdm(total=members, unit="member", desc="synth", disable=not progress)
    try:
        if workers <= 1:
            for block, n in blocks:
                _write_block(writers, simulate_block(seed, block, n, profile))
                bar.update(n)
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                pending: list[tuple[int, Future[dict[str, pa.Table]]]] = []
                queue = iter(blocks)
                for block, n in queue:
                    pending.append((n, pool.submit(simulate_block, seed, block, n, profile)))
                    if len(pending) >= 2 * workers:
                        n_done, fut = pending.pop(0)
                        _write_block(writers, fut.result())
                        bar.update(n_done)
                for n_done, fut in pending:
                    _write_block(writers, fut.result())
                    bar.update(n_done)
    finally:
        writers.close()
        bar.close()
    manifest = {"generator": "chronorisk synthetic", "generator_version": GENERATOR_VERSION, "seed": seed,
                "members": members, "profile": profile.name, "extract_date": profile.extract_date.isoformat(),
                "format": file_format, "rows": writers.rows}
    (out_dir / "_manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return SynthSummary(out_dir=out_dir, rows={k: v for k, v in writers.rows.items()})


def _write_block(writers: _Writers, tables: dict[str, pa.Table]) -> None:
    for name, table in tables.items():
        writers.write(name, table)

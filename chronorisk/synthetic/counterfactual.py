"""Counterfactual truth: the generator's true horizon risk of given members under a what-if scenario.

The generator is deterministic per block of members (chronorisk/synthetic/cohort.py), so the latent
population behind a synthetic folder can be drawn again from its `_manifest.json`; a scenario
then edits the latent state from the index date on and the hazard is integrated over the horizon
exactly as `_truth/yearly.parquet` was (`chronorisk/synthetic/population.py`). The model's what-if edits the
records and predicts recorded events; this says what would truly happen to onset, so the two
are compared as relative changes. Synthetic data only: an import has no latent state.

Scenarios, as the product YAML names them:
- `steps_at_least V`: the latent daily-steps level is raised to at least V from the index date on
  (the member's trend term is kept: the scenario moves the level, as the records' edit does);
- `bmi_change D`: latent BMI moves by D from the index date on, and glycaemia follows through the
  generator's own coupling (HbA1c 0.03 % per kg/m2, fasting glucose 0.9 mmol/L per % of HbA1c);
  the hazard's BMI term is a total effect (epidemiology.md), so nothing else is added.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from chronorisk.data.units import YEAR_DAYS
from chronorisk.synthetic.cohort import BLOCK, block_rngs
from chronorisk.synthetic.population import DAY0, cumulative_hazards, draw_population, true_risk
from chronorisk.synthetic.profile import load_profile
from chronorisk.synthetic.records import pop_rows

BMI_TO_HBA1C = 0.03  # latent_state: g = hba1c0 + g_slope * dt + 0.03 * (bmi - bmi0)
HBA1C_TO_FPG = 0.9  # latent_state: fpg = fpg0 + 0.9 * (g - hba1c0)
DISEASES = {"diabetes": 0, "hypertension": 1}


def has_truth(data_dir: Path) -> bool:
    """Whether the folder came from the generator (its manifest names it) and so has a latent state."""
    manifest = Path(data_dir) / "_manifest.json"
    return manifest.exists() and json.loads(manifest.read_text()).get("generator") == "chronorisk synthetic"


def _edit(kind: str | None, value: float, t0: np.ndarray):  # type: ignore[no-untyped-def]
    """The latent-state edit of one scenario, from each member's index date t0 (years) on."""
    def edit(s: dict[str, np.ndarray], t: np.ndarray) -> None:
        after = t >= t0[:, None]
        if kind == "steps_at_least":
            s["steps"] = np.where(after, np.maximum(s["steps"], value), s["steps"])
        elif kind == "bmi_change":
            bmi = np.maximum(s["bmi"] + value, 15.0)
            delta = np.where(after, bmi - s["bmi"], 0.0)
            s["bmi"] = s["bmi"] + delta
            s["hba1c"] = s["hba1c"] + BMI_TO_HBA1C * delta
            s["fpg"] = s["fpg"] + HBA1C_TO_FPG * BMI_TO_HBA1C * delta
        elif kind is not None:
            raise ValueError(f"no counterfactual for scenario edit {kind!r}")
    return edit


def true_risk_under(data_dir: Path, member_ids: np.ndarray, index_dates: np.ndarray, disease: str,
                    horizon_years: float, edit: str | None = None, value: float = 0.0,
                    profiles_dir: Path = Path("experiments/profiles")) -> np.ndarray:
    """True probability of onset in [t, t + horizon) for each (member, index date) under the edit
    (None: as generated, equal to `_truth/yearly`); NaN where the member is not in the folder or
    already has the disease at t."""
    manifest = json.loads((Path(data_dir) / "_manifest.json").read_text())
    profile = load_profile(profiles_dir / f"{manifest['profile']}.yaml")
    seed, members = int(manifest["seed"]), int(manifest["members"])
    ids = pd.Series(np.asarray(member_ids, dtype=object)).astype("str")
    idx = pd.to_numeric(ids.str.removeprefix("M"), errors="coerce").to_numpy()
    t_days = np.asarray(index_dates, dtype="datetime64[D]")
    t0 = (t_days - DAY0).astype(np.int64) / YEAR_DAYS
    out = np.full(len(ids), np.nan)
    known = ~np.isnan(idx) & (idx >= 0) & (idx < members)
    blocks = np.floor(np.where(known, idx, 0) / BLOCK).astype(np.int64)
    k = DISEASES[disease]
    for block in np.unique(blocks[known]):
        rows = np.flatnonzero(known & (blocks == block))
        rng_pop = block_rngs(seed, int(block))[0]  # the stream simulate_block draws the population from
        n = min(BLOCK, members - int(block) * BLOCK)
        pop = draw_population(rng_pop, int(block) * BLOCK, n, profile)
        pos = idx[rows].astype(np.int64) - int(block) * BLOCK
        sub = pop_rows(pop, pos)
        cum = cumulative_hazards(sub, _edit(edit, value, t0[rows]))[k]
        onset = getattr(sub, "dm_onset_t" if disease == "diabetes" else "htn_onset_t")
        free = ~(np.nan_to_num(onset, nan=np.inf) < t0[rows])
        out[rows] = np.where(free, true_risk(cum, t0[rows], horizon_years), np.nan)
    return out

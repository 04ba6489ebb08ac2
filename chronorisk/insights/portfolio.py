"""The portfolio a report describes: its feature rows, their segments, and their TreeSHAP values.

A portfolio is either every member of a raw folder enrolled on one index date (built here, in
member chunks, with the scenarios' edited features in the same pass) or a features parquet
written by `features build` or `score --data`, through the one feature function (`features/build.py`).
SHAP values come from
LightGBM's own TreeSHAP (`pred_contrib`) in chunks, and must add up to the raw score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from chronorisk.data.enrolment import enrolled_on
from chronorisk.insights.whatif import edit_tables, touched_pairs
from chronorisk.model.bundle import Scorer
from chronorisk.model.product import ProductSpec, WhatIfScenario
from features.build import compute_features
from features.pointintime import KEY
from features.registry import FeatureRegistry
from features.runners import RunTotals, parquet_meta, run_chunked
from training.evaluate import age_band
from training.labels import recorded_events

SEGMENTS = ("sex", "age_band", "wearable", "region")
BASELINE = ""  # the `scenario` value of unedited rows
SHAP_CHUNK_ROWS = 20_000
ADDITIVITY_TOLERANCE = 1e-6


class PortfolioChunk:
    """Chunk function: the portfolio's rows in one member chunk, then each scenario's edited rows.

    With `index_date`, the portfolio is every member enrolled that day without the disease on
    record (the product's knock-out would decline them); with `pairs`, exactly those pairs.
    """

    def __init__(self, spec: ProductSpec, scenarios: Sequence[WhatIfScenario], registry: FeatureRegistry, *,
                 index_date: date | None = None, pairs: pd.DataFrame | None = None) -> None:
        if (index_date is None) == (pairs is None):
            raise ValueError("give exactly one of index_date or pairs")
        self.spec, self.scenarios, self.registry = spec, list(scenarios), registry
        self.index_date, self.pairs = index_date, pairs

    def _pairs(self, members: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
        ids = members["member_id"].astype("str")
        if self.pairs is not None:
            return self.pairs[self.pairs["member_id"].isin(set(ids))], {}
        t = pd.Timestamp(self.index_date)
        enrolled = enrolled_on(members, t)
        return pd.DataFrame({"member_id": ids[enrolled].to_numpy(), "index_date": t}), {
            "members": len(members), "enrolled": int(enrolled.sum())}

    def __call__(self, tables: Mapping[str, pd.DataFrame]) -> tuple[pd.DataFrame, dict[str, int]]:
        pairs, counts = self._pairs(tables["members"])
        if self.index_date is not None:
            first = recorded_events(tables, self.spec)
            prevalent = set(first.index[first < pd.Timestamp(self.index_date)].astype("str"))
            keep = ~pairs["member_id"].isin(prevalent)
            counts["excluded_prevalent"] = int((~keep).sum())
            pairs = pairs[keep]
        base = compute_features(tables, pairs, self.registry)
        regions = tables["members"][["member_id", "region"]].astype({"member_id": "str", "region": "str"})
        base = base.merge(regions.drop_duplicates("member_id"), on="member_id", how="left")
        base["scenario"] = BASELINE
        frames = [base]
        for scenario in self.scenarios:
            edited, records = edit_tables(tables, scenario)
            sub = pairs[touched_pairs(records, pairs)]
            if len(sub):
                frame = compute_features(edited, sub, self.registry)
                frame["scenario"] = scenario.name
                frames.append(frame)
            counts[f"edited_{scenario.name}"] = len(sub)
        counts["rows"] = len(base)
        return pd.concat(frames, ignore_index=True), counts


@dataclass
class PortfolioFrames:
    """The portfolio's rows (`base`) and, per scenario, the re-featured rows of edited members.

    `whatif_base` holds the unedited rows of the same pass when they differ from `base` (a
    features file as the portfolio), so a what-if compares rows built from the same records.
    """

    base: pd.DataFrame
    scenarios: dict[str, pd.DataFrame] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    whatif_base: pd.DataFrame | None = None


def build_portfolio(data_dir: Path, spec: ProductSpec, scenarios: Sequence[WhatIfScenario],
                    registry: FeatureRegistry, *, extract_date: date, pepper: bytes,
                    index_date: date | None = None, pairs: pd.DataFrame | None = None,
                    chunk_members: int = 20_000, progress: bool = True) -> PortfolioFrames:
    """One chunked pass over the raw folder: the portfolio's features and every scenario's."""
    fn = PortfolioChunk(spec, scenarios, registry, index_date=index_date, pairs=pairs)
    totals = RunTotals()
    frames = list(run_chunked(data_dir, fn, chunk_members=chunk_members, extract_date=extract_date, pepper=pepper,
                              totals=totals, progress=progress))
    every = pd.concat(frames, ignore_index=True)
    base = every[every["scenario"] == BASELINE].drop(columns="scenario").reset_index(drop=True)
    by_scenario = {s.name: every[every["scenario"] == s.name].drop(columns=["scenario", "region"])
                   .reset_index(drop=True) for s in scenarios}
    return PortfolioFrames(base=base, scenarios=by_scenario, counts=dict(totals.counts))


def read_portfolio(path: Path) -> pd.DataFrame:
    """A features parquet from `features build` or `score --data`, index dates at day resolution."""
    frame = pd.read_parquet(path)
    if "index_date" in frame:
        frame["index_date"] = pd.to_datetime(frame["index_date"]).astype("datetime64[s]")
    return frame


def portfolio_data_dir(path: Path) -> Path | None:
    """The raw folder a snapshot records in its metadata (`features build --product`), if any."""
    recorded = parquet_meta(path).get("data_dir")
    return Path(str(recorded)) if recorded else None


def segments(frame: pd.DataFrame) -> pd.DataFrame:
    """Sex, age band, wearable or none, and region of each row; "unknown" where not recorded."""
    if "sex" in frame:
        sex = frame["sex"].astype("object").where(frame["sex"].isin(["F", "M"]), "unknown")
    else:
        male = frame["sex_male"].to_numpy(dtype=float)
        sex = pd.Series(np.where(np.isnan(male), "unknown", np.where(male == 1.0, "M", "F")), index=frame.index)
    coverage = frame["wear_coverage_365d"].to_numpy(dtype=float) if "wear_coverage_365d" in frame else None
    wearable = ("unknown" if coverage is None
                else pd.Series(np.where(np.nan_to_num(coverage) > 0, "wearable", "none"), index=frame.index))
    region = frame["region"].astype("object").fillna("unknown") if "region" in frame else "unknown"
    return pd.DataFrame({"sex": sex, "age_band": age_band(frame["age_years"]), "wearable": wearable,
                         "region": region}, index=frame.index).astype("str")


def shap_values(booster: Scorer, x: np.ndarray, *, chunk_rows: int = SHAP_CHUNK_ROWS,
                progress: bool = True) -> np.ndarray:
    """TreeSHAP contributions (one column per feature, then the base value) in chunks of rows.

    Chunks bound the memory of LightGBM's output buffer and let the bar move; each chunk is one
    multithreaded `pred_contrib` call, so chunking costs little next to one call over everything.
    """
    n = len(x)
    out = np.empty((n, x.shape[1] + 1), dtype=float)
    with tqdm(total=n, unit="member", desc="SHAP", disable=not progress) as bar:
        for start in range(0, n, chunk_rows):
            stop = min(start + chunk_rows, n)
            out[start:stop] = np.asarray(booster.predict(x[start:stop], pred_contrib=True))
            bar.update(stop - start)
    return out


def check_additivity(contrib: np.ndarray, raw: np.ndarray, tolerance: float = ADDITIVITY_TOLERANCE) -> float:
    """Contributions plus base value must equal the raw score on every row; the largest gap."""
    gap = np.abs(contrib.sum(axis=1) - raw)
    bad = int((gap > tolerance).sum())
    if bad:
        raise ValueError(f"SHAP additivity broken on {bad:,} of {len(raw):,} rows: contributions plus base value "
                         f"differ from the raw score by up to {gap.max():.3g} (tolerance {tolerance:g})")
    return float(gap.max()) if len(gap) else 0.0


def pair_key(frame: pd.DataFrame) -> pd.MultiIndex:
    return pd.MultiIndex.from_arrays([frame["member_id"].astype("str"),
                                      pd.to_datetime(frame["index_date"]).astype("datetime64[s]")], names=KEY)

"""`chronorisk report`: SHAP portfolio insights for product designers, from the champion model.

Computes TreeSHAP for every member of a portfolio, checks that it adds up to the raw score,
answers the designers' questions (drivers, segments, risk classes, calibration by segment,
what-ifs by re-scoring) and writes one self-contained HTML file plus the SHAP values as parquet.
The HTML is logged to the model version's MLflow run.
"""

from __future__ import annotations

import itertools
import json
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chronorisk.data.pseudonym import member_refs
from chronorisk.insights import figures as figs
from chronorisk.insights import segments as insights
from chronorisk.insights.html import ReportContent, render
from chronorisk.insights.portfolio import (
    SEGMENTS,
    PortfolioFrames,
    build_portfolio,
    check_additivity,
    pair_key,
    portfolio_data_dir,
    read_portfolio,
    segments,
    shap_values,
)
from chronorisk.insights.whatif import ScenarioResult, summarise
from chronorisk.model.bundle import LoadedModel, probabilities
from chronorisk.model.product import ProductSpec, WhatIfScenario
from features.registry import FeatureRegistry, default_registry

REPORT_FILE = "report.html"
SHAP_FILE = "shap_values.parquet"
SUMMARY_FILE = "report.json"
TOP_DEPENDENCE = 4
TOP_SEGMENT_FEATURES = 10
MLFLOW_REPORT_DIR = "reports"


@dataclass
class ReportResult:
    html: Path
    shap_parquet: Path
    members: int
    timings_s: dict[str, float]
    additivity_max_gap: float
    scenarios: list[ScenarioResult]
    logged_to_run: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def shap_rows_per_s(self) -> float:
        return self.members / self.timings_s["shap"] if self.timings_s.get("shap") else float("nan")


def _scenario_results(model: LoadedModel, scenarios: list[WhatIfScenario], portfolio: PortfolioFrames,
                      base_key: pd.MultiIndex, p_base: np.ndarray) -> list[ScenarioResult]:
    """Re-score each scenario's edited members against the same pass's unedited rows."""
    out = []
    for scenario in scenarios:
        edited_rows = portfolio.scenarios.get(scenario.name, pd.DataFrame())
        p_after = p_base.copy()
        edited = np.zeros(len(p_base), dtype=bool)
        if len(edited_rows):
            at = base_key.get_indexer(pair_key(edited_rows))
            found = at >= 0
            p_after[at[found]] = probabilities(model, edited_rows[found])
            edited[at[found]] = True
        out.append(summarise(scenario, model.spec, p_base, p_after, edited))
    return out


def _with_truth(results: list[ScenarioResult], scenarios: list[WhatIfScenario], rows: pd.DataFrame,
                spec: ProductSpec, truth_dir: Path | None) -> tuple[list[ScenarioResult], str]:
    """Each scenario's counterfactual truth on the same members, where the data has a latent state."""
    from chronorisk.synthetic.counterfactual import DISEASES, has_truth, true_risk_under

    if truth_dir is None or not has_truth(truth_dir) or spec.name not in DISEASES:
        return results, "No counterfactual truth available for the what-ifs (not synthetic data from the generator)."
    ids, dates = rows["member_id"].to_numpy(dtype=object), pd.to_datetime(rows["index_date"]).to_numpy()
    base = true_risk_under(truth_dir, ids, dates, spec.name, spec.horizon_years)
    free = ~np.isnan(base)
    by_name = {s.name: s for s in scenarios}
    out = []
    for r in results:
        s = by_name[r.name]
        after = true_risk_under(truth_dir, ids, dates, spec.name, spec.horizon_years, s.edit, s.value)
        out.append(replace(r, true_onsets_before=float(base[free].sum()), true_onsets_after=float(after[free].sum()),
                           true_members=int(free.sum())))
    return out, ("What-ifs beside the generator's counterfactual truth: the same members' true onset risk with the "
                 "latent state edited from the index date on (chronorisk/synthetic/counterfactual.py). The model "
                 "predicts recorded events and the truth is onset, so compare relative changes, not levels.")


def _test_set_calibration(model: LoadedModel, test_set: pd.DataFrame | None
                          ) -> tuple[dict[str, pd.DataFrame], bytes | None, str]:
    if test_set is None or not len(test_set):
        return {}, None, "The model's run has no test set; calibration by segment is not available."
    y = test_set["label"].to_numpy(dtype=int)
    p = probabilities(model, test_set)
    seg = segments(test_set)
    kinds = [k for k in SEGMENTS if (seg[k] != "unknown").any()]
    tables = {k: insights.calibration_by_segment(y, p, seg[k]) for k in kinds}
    curves = {k: insights.calibration_curve_by_segment(y, p, seg[k]) for k in kinds}
    missing = [k for k in SEGMENTS if k not in kinds]
    note = (f"On the model's own test set ({len(test_set):,} rows, {int(y.sum()):,} events, index dates "
            f"{', '.join(sorted({str(d)[:10] for d in test_set['index_date']}))}).")
    if missing:
        note += f" Not recorded in the test set: {', '.join(missing)}."
    return tables, figs.calibration_panels(curves), note


def shap_frame(frame: pd.DataFrame, seg: pd.DataFrame, model: LoadedModel, contrib: np.ndarray, raw: np.ndarray,
               p: np.ndarray, pepper: bytes) -> pd.DataFrame:
    """The designers' export: pseudonymous member reference (never the id), segments, scores,
    feature values and one `shap__<feature>` column per feature plus the base value."""
    feats = model.features
    out = pd.DataFrame({"member_ref": member_refs(frame["member_id"].astype("str"), pepper).to_numpy(),
                        "index_date": pd.to_datetime(frame["index_date"]).to_numpy()})
    for k in SEGMENTS:
        out[k] = seg[k].to_numpy()
    out["raw_score"] = raw
    out["probability"] = p
    out["risk_class"] = model.spec.class_names(p)
    values = frame[feats].to_numpy(dtype=float)
    out = pd.concat([out, pd.DataFrame(values, columns=feats),
                     pd.DataFrame(contrib[:, :-1], columns=[f"shap__{f}" for f in feats])], axis=1)
    out["shap__base_value"] = contrib[:, -1]
    return out


def make_report(model: LoadedModel, model_label: str, portfolio: PortfolioFrames, scenarios: list[WhatIfScenario],
                test_set: pd.DataFrame | None, out_dir: Path, *, pepper: bytes, source: str,
                registry: FeatureRegistry | None = None, progress: bool = True,
                notes: list[str] | None = None, truth_dir: Path | None = None) -> ReportResult:
    """Compute everything and write `report.html` and `shap_values.parquet` into `out_dir`.
    With `truth_dir` (a synthetic folder), each what-if also gets the generator's counterfactual truth."""
    registry = registry or default_registry()
    spec: ProductSpec = model.spec
    frame = portfolio.base
    if not len(frame):
        raise ValueError(f"the portfolio ({source}) has no rows to report on")
    missing = [f for f in model.features if f not in frame.columns]
    if missing:
        raise ValueError(f"the portfolio ({source}) lacks {len(missing)} of the model's features: {missing[:5]}")
    timings: dict[str, float] = {}
    x = frame[model.features].to_numpy(dtype=float)
    start = time.perf_counter()
    contrib = shap_values(model.scorer, x, progress=progress)
    timings["shap"] = time.perf_counter() - start
    raw = np.asarray(model.scorer.predict(x, raw_score=True))
    gap = check_additivity(contrib, raw)
    p = np.asarray(model.calibration.probability(raw), dtype=float)
    seg = segments(frame)
    feats = model.features

    start = time.perf_counter()
    importance = insights.global_importance(contrib, feats, registry)
    top = list(importance["feature"].head(TOP_SEGMENT_FEATURES))
    rows = figs.sample_rows(len(frame))
    values = frame[feats].iloc[rows].reset_index(drop=True)
    sample = contrib[rows, :-1]
    dependence = []
    for f in top[:TOP_DEPENDENCE]:
        partner = figs.strongest_interaction(sample, values, f)
        described = registry[f].description if f in registry else f  # a custom feature may lack an entry
        dependence.append((f, partner, figs.dependence(sample, values, f, partner, described)))
    kinds = [k for k in SEGMENTS if (seg[k] != "unknown").any()]
    seg_importance = {k: insights.segment_importance(contrib, feats, seg[k], top) for k in kinds}
    seg_risk = {k: insights.segment_risk(p, seg[k], spec) for k in kinds}
    drivers = insights.class_drivers(contrib, feats, p, spec)
    present = list(drivers.columns)
    separations = [(lo, hi, insights.separating_features(drivers, lo, hi)) for lo, hi in itertools.pairwise(present)]
    cal_tables, cal_figure, cal_note = _test_set_calibration(model, test_set)
    timings["analysis"] = time.perf_counter() - start

    start = time.perf_counter()
    if portfolio.whatif_base is None:
        results = _scenario_results(model, scenarios, portfolio, pair_key(frame), p)
    else:
        results = _scenario_results(model, scenarios, portfolio, pair_key(portfolio.whatif_base),
                                    probabilities(model, portfolio.whatif_base))
    notes = list(notes or [])
    if results:
        results, note = _with_truth(results, scenarios, portfolio.whatif_base if portfolio.whatif_base is not None
                                    else frame, spec, truth_dir)
        notes.append(note)
    timings["what_if_scoring"] = time.perf_counter() - start

    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    shap_path = out_dir / SHAP_FILE
    shap_frame(frame, seg, model, contrib, raw, p, pepper).to_parquet(shap_path, index=False, compression="zstd")
    top_drivers = drivers.loc[[f for f in top if f in drivers.index]]
    content = ReportContent(
        title=f"{spec.title}: portfolio SHAP insights", model_label=model_label, source=source,
        members=len(frame), mean_risk=float(p.mean()), expected_claims=float(p.sum()),
        horizon_years=spec.horizon_years, additivity_max_gap=gap, class_members=insights.class_members(p, spec),
        importance=importance, importance_png=figs.importance_bars(importance),
        beeswarm_png=figs.beeswarm(sample, values), sample_rows=len(rows), dependence=dependence,
        segment_importance=seg_importance,
        segment_importance_png={k: figs.heatmap(t, f"mean |SHAP| by {k}", "mean |SHAP|")
                                for k, t in seg_importance.items()},
        segment_risk=seg_risk, segment_risk_png=figs.segment_risk_bars(seg_risk) if seg_risk else None,
        drivers=top_drivers, drivers_png=figs.heatmap(top_drivers, "mean SHAP by risk class", "mean SHAP (log-odds)",
                                                     diverging=True),
        separations=separations, calibration=cal_tables, calibration_png=cal_figure, calibration_note=cal_note,
        scenarios=results, descriptions={f: registry[f].description for f in feats if f in registry},
        notes=list(notes or []), counts=dict(portfolio.counts))
    html_path = out_dir / REPORT_FILE
    html_path.write_text(render(content), encoding="utf-8")
    timings["write"] = time.perf_counter() - start
    summary = {"model": model_label, "source": source, "members": len(frame), "mean_risk": float(p.mean()),
               "expected_claims": float(p.sum()), "additivity_max_gap": gap, "timings_s": timings,
               "shap_rows_per_s": len(frame) / timings["shap"] if timings["shap"] > 0 else None,
               "counts": dict(portfolio.counts),
               "scenarios": [{"name": s.name, "members": s.members, "with_source_data": s.with_source_data,
                              "changed_class": s.changed_class, "moved_down": s.moved_down, "moved_up": s.moved_up,
                              "expected_claims_before": s.expected_claims_before,
                              "expected_claims_after": s.expected_claims_after,
                              "model_relative_change": s.model_relative_change,
                              "true_members": s.true_members, "true_onsets_before": s.true_onsets_before,
                              "true_onsets_after": s.true_onsets_after,
                              "true_relative_change": s.true_relative_change} for s in results]}
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return ReportResult(html=html_path, shap_parquet=shap_path, members=len(frame), timings_s=timings,
                        additivity_max_gap=gap, scenarios=results, notes=list(notes or []))


def default_index_date(extract_date: date) -> date:
    """The book as it stands after the extract: the day after its last valid record date."""
    return extract_date + timedelta(days=1)


def portfolio_from_file(path: Path, spec: ProductSpec, scenarios: list[WhatIfScenario], registry: FeatureRegistry,
                        data_dir: Path | None, *, pepper: bytes, progress: bool = True, custom: bool = False,
                        ) -> tuple[PortfolioFrames, list[str]]:
    """A features parquet as the portfolio; the scenarios' re-featured rows need its raw folder
    (`data_dir`, else the one the file's metadata names)."""
    from chronorisk.data.contracts import extract_date_of

    frame = read_portfolio(path)
    notes: list[str] = []
    if custom:  # the raw-record pass rebuilds built-in features only; an import's own measurements live apart
        notes.append("The model has custom measurements (an imported extract): what-ifs, which re-feature raw "
                     "records, are not computed; the report covers the file's rows as they are.")
        return PortfolioFrames(base=frame.reset_index(drop=True)), notes
    raw_dir = data_dir or portfolio_data_dir(path)
    if raw_dir is None or not Path(raw_dir).is_dir() or "member_id" not in frame:
        notes.append("No raw records for this portfolio (pass --data DIR): what-ifs not computed, region unknown.")
        return PortfolioFrames(base=frame.reset_index(drop=True)), notes
    pairs = frame[["member_id", "index_date"]].astype({"member_id": "str"}).drop_duplicates(ignore_index=True)
    built = build_portfolio(Path(raw_dir), spec, scenarios, registry, extract_date=extract_date_of(Path(raw_dir)),
                            pepper=pepper, pairs=pairs, progress=progress)
    # SHAP is computed on the file's rows; the what-if compares re-featured rows with the same
    # pass's unedited rows, so a different history window in the file cannot enter the difference.
    base = frame.reset_index(drop=True)
    if "region" not in base:
        regions = built.base.drop_duplicates("member_id").set_index("member_id")["region"]
        base["region"] = base["member_id"].astype("str").map(regions)
    return PortfolioFrames(base=base, scenarios=built.scenarios, counts=built.counts, whatif_base=built.base), notes


def fetch_test_set(client: Any, run_id: str) -> pd.DataFrame | None:
    """The model's own test set (`evaluation/test_set.parquet` of its run), or None if absent."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from training.gate import TEST_SET_ARTIFACT

    with tempfile.TemporaryDirectory(prefix="chronorisk-testset-") as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=TEST_SET_ARTIFACT, dst_path=tmp,
                                                       tracking_uri=client.tracking_uri)
        except (MlflowException, OSError):
            return None
        return read_portfolio(Path(path))


def log_report(client: Any, run_id: str, html: Path) -> None:
    """Put the report beside the model's run artifacts, at the location this store records for the run.

    The repository is built from the run's recorded artifact URI rather than through the
    client's per-run cache, which can still point at another store that held the same run id.
    """
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    get_artifact_repository(client.get_run(run_id).info.artifact_uri).log_artifact(str(html), MLFLOW_REPORT_DIR)


def run_report(tracking_uri: str, product: str, out_dir: Path, *, pepper: bytes, data_dir: Path | None = None,
               portfolio_file: Path | None = None, index_date: date | None = None, version: str = "champion",
               log_to_mlflow: bool = True, progress: bool = True) -> ReportResult:
    """Load the model version (hash-checked), build or read the portfolio, write and log the report."""
    from chronorisk.data.contracts import extract_date_of
    from chronorisk.model.product import load_product
    from chronorisk.model.registry import connect, fetch, model_name, resolve

    if (data_dir is None) and (portfolio_file is None):
        raise ValueError("give --data DIR or --portfolio FILE")
    client = connect(tracking_uri)
    mv = resolve(client, product, version)
    model = fetch(client, mv)
    # Scenarios come from the product YAML as it is today (designers add them without retraining);
    # risk classes stay the model's own, as registered with it.
    scenarios = list(load_product(product).scenarios)
    registry = default_registry().extend(model.custom_features) if model.custom_features else default_registry()
    label = f"{model_name(product)} v{mv.version} ({version})"
    if portfolio_file is not None:
        portfolio, notes = portfolio_from_file(portfolio_file, model.spec, scenarios, registry, data_dir,
                                               pepper=pepper, progress=progress, custom=bool(model.custom_features))
        source = f"{portfolio_file.name} ({len(portfolio.base):,} rows)"
        if not portfolio.scenarios:
            scenarios = []
    else:
        assert data_dir is not None
        if model.custom_features:
            raise ValueError(f"{model_name(product)} v{mv.version} has custom measurements, which live beside an "
                             "import's raw tables: report on its features file with --portfolio instead")
        extract = extract_date_of(data_dir)
        when = index_date or default_index_date(extract)
        portfolio = build_portfolio(data_dir, model.spec, scenarios, registry, extract_date=extract, pepper=pepper,
                                    index_date=when, progress=progress)
        notes = [f"Members enrolled on {when} without {model.spec.disease} on record "
                 f"({portfolio.counts.get('excluded_prevalent', 0):,} with it already on record are left out: "
                 "the product declines them)."]
        source = f"every member of {data_dir.name}/ enrolled on {when}"
    result = make_report(model, label, portfolio, scenarios, fetch_test_set(client, str(mv.run_id)), out_dir,
                         pepper=pepper, source=source, registry=registry, progress=progress, notes=notes,
                         truth_dir=data_dir)
    if log_to_mlflow:
        log_report(client, str(mv.run_id), result.html)
        result.logged_to_run = str(mv.run_id)
    return result

"""What one training run leaves behind, whichever path trained it: the result both paths return,
the MLflow record (parameters, figures, plots, the hashed test set), the data fingerprint, the
monitor's reference and the bundle's input example.

Both `training/train.py` (the out-of-time split) and `training/train_small.py` (repeated k-fold)
write these, so they live here and neither training path imports the other's internals.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import yaml

from chronorisk.data.pseudonym import member_refs
from chronorisk.model.bundle import Scorer, model_kind, sha256_file
from chronorisk.model.card import FAMILY_LABEL
from chronorisk.model.product import ProductSpec
from training import plots
from training.baselines import findrisc_from_features, fit_glm
from training.evaluate import decile_lift, metrics, safe_auc, true_risk_ceiling
from training.fit import DEFAULT_PARAMS, explanation_cost_ms
from training.gate import TEST_SET_ARTIFACT
from training.subgroups import subgroup_check, subgroup_metric_names

SUBGROUP_NOTE = "SUBGROUP GAP: "  # how a gap reads among the run's notes


@dataclass
class Evaluation:
    """One fitted model judged on the test rows beside its baselines, however it was trained: what
    `log_run` records and `TrainResult` returns."""

    model: Scorer
    features: list[str]
    monotone: list[int]
    params: dict[str, Any]  # the parameters as chosen (the k-fold path adds its rounds)
    seed: int
    test: dict[str, float]
    glm: dict[str, float]
    findrisc_auc: float | None
    ceiling: dict[str, Any]
    explanation_ms: float
    p_test: np.ndarray
    scores: dict[str, np.ndarray]  # the ROC plot's curves: the model's, the GLM's and FINDRISC's
    notes: list[str]


@dataclass
class TrainResult:
    run_id: str
    version: str | None
    test_metrics: dict[str, float]
    glm_metrics: dict[str, float]
    findrisc_auc: float | None
    ceiling: dict[str, Any]
    explanation_ms: float
    best_params: dict[str, Any]
    test_predictions: np.ndarray
    notes: list[str] = field(default_factory=list)
    model_family: str = "LightGBM"  # what the registered version is, in words (chronorisk/model/card.py)
    subgroup_flags: list[str] = field(default_factory=list)  # gaps beyond their bounds, for the gate

    @classmethod
    def of(cls, run_id: str, version: str | None, ev: Evaluation, subgroup_flags: list[str]) -> TrainResult:
        return cls(run_id, version, ev.test, ev.glm, ev.findrisc_auc, ev.ceiling, ev.explanation_ms,
                   {**DEFAULT_PARAMS, **ev.params}, ev.p_test, ev.notes, FAMILY_LABEL[model_kind(ev.model)],
                   subgroup_flags)


def evaluate(spec: ProductSpec, meta: dict[str, Any], model: Scorer, p_test: np.ndarray, test: pd.DataFrame,
             glm_rows: tuple[np.ndarray, np.ndarray], *, features: list[str], monotone: list[int],
             params: dict[str, Any], seed: int, notes: list[str], model_label: str,
             glm_label: str) -> Evaluation:
    """The model's test figures beside the GLM's (fitted on `glm_rows`) and FINDRISC's on the same
    rows, the true-risk ceiling where generator truth exists (an event outcome on synthetic data;
    an extract has none) and the cost of one explanation."""
    x_test, y_test = test[features].to_numpy(dtype=float), test["label"].to_numpy(dtype=int)
    p_glm = fit_glm(*glm_rows, seed).predict_proba(x_test)[:, 1]
    scores = {model_label: p_test, glm_label: p_glm}
    findrisc_auc = None
    if spec.baseline_score == "findrisc":
        points = findrisc_from_features(test).to_numpy(dtype=float)
        findrisc_auc = safe_auc(y_test, points)
        scores["FINDRISC"] = points
    ceiling = true_risk_ceiling(test, p_test, Path(meta["data_dir"]) if meta.get("data_dir") else None,
                                spec.name, spec.horizon_years) if spec.outcome == "event" else \
        {"available": False, "note": "no ceiling available: imported data has no generator truth"}
    return Evaluation(model, features, monotone, params, seed, metrics(y_test, p_test), metrics(y_test, p_glm),
                      findrisc_auc, ceiling, explanation_cost_ms(model, x_test[0]), p_test, scores, notes)


def data_fingerprint(snapshot: Path, frame: pd.DataFrame, meta: dict[str, Any]) -> dict[str, Any]:
    """What the model was trained on, without any record: file hash, sizes, period, source."""
    by_split = frame.groupby("split")["label"].agg(["size", "sum"])
    return {
        "snapshot_sha256": sha256_file(snapshot), "rows": len(frame),
        "rows_by_split": {k: int(v) for k, v in by_split["size"].items()},
        "events_by_split": {k: int(v) for k, v in by_split["sum"].items()},
        "index_dates": sorted(str(d)[:10] for d in frame["index_date"].unique()),
        "extract_date": meta.get("extract_date"), "source": meta.get("source", {}),
    }


def log_run(spec: ProductSpec, snapshot: Path, frame: pd.DataFrame, meta: dict[str, Any],
            parts: dict[str, pd.DataFrame], ev: Evaluation, pepper: bytes) -> list[str]:
    """Log the run so the gate and the model card can judge it later without the data: figures and
    tags, plots, the subgroup check, and the test set with member references HMAC'd, never ids.
    Returns the subgroup gaps beyond their bounds (also noted in the run's notes)."""
    features, monotone, booster, notes, p_test = ev.features, ev.monotone, ev.model, ev.notes, ev.p_test
    m_model, m_glm, findrisc_auc, ceiling, cost = ev.test, ev.glm, ev.findrisc_auc, ev.ceiling, ev.explanation_ms
    params, seed, scores = ev.params, ev.seed, ev.scores
    test = parts["test"]
    y = test["label"].to_numpy(dtype=int)
    if meta.get("unfilled_features"):
        notes.append(f"{len(meta['unfilled_features'])} built-in features left out: the extract never fills them "
                     f"(all missing or one value), e.g. {', '.join(meta['unfilled_features'][:5])}")
    groups = subgroup_check(test, p_test, spec)
    notes.extend(f"{SUBGROUP_NOTE}{flag}" for flag in groups.flags)
    overrides = {f: int(d) for f, d in spec.monotone_overrides.items()}
    mlflow.log_params({"product": spec.name, "seed": seed, "horizon_years": spec.horizon_years,
                       "n_features": len(features), "monotone_overrides": json.dumps(overrides),
                       **{f"lgb_{k}": v for k, v in {**DEFAULT_PARAMS, **params}.items()},
                       **{f"rows_{k}": len(v) for k, v in parts.items()}})
    figures = {f"test_{k}": v for k, v in m_model.items()} | {f"test_glm_{k}": v for k, v in m_glm.items()}
    figures |= {"explanation_ms_per_row": cost, "num_trees": booster.num_trees(),
                "auc_minus_glm": m_model["roc_auc"] - m_glm["roc_auc"]}
    if findrisc_auc is not None:
        figures |= {"test_findrisc_roc_auc": findrisc_auc, "auc_minus_findrisc": m_model["roc_auc"] - findrisc_auc}
    if ceiling.get("available"):
        figures |= {"ceiling_true_risk_auc": ceiling["ceiling_auc"],
                    "model_auc_vs_true_onset": ceiling["model_auc_vs_true_onset"],
                    "ratio_to_ceiling": ceiling["model_auc_vs_true_onset"] / ceiling["ceiling_auc"]}
    mlflow.log_metrics({k: float(v) for k, v in figures.items() if v is not None and np.isfinite(v)})
    mlflow.set_tags({"product": spec.name, "model_family": model_kind(booster),
                     "leakage_alarm": str(bool(ceiling.get("leakage_alarm"))).lower(),
                     "ceiling": "available" if ceiling.get("available") else "no ceiling available",
                     "notes": " | ".join(notes)[:4900] or "-",
                     "subgroup_flags": " | ".join(groups.flags)[:4900] or "none"})
    mlflow.log_metrics(subgroup_metric_names(groups.table))
    with tempfile.TemporaryDirectory(prefix="run-") as tmp:
        out = Path(tmp)
        (out / "plots").mkdir()
        (out / "evaluation").mkdir()
        contrib = booster.predict(test[features].to_numpy(dtype=float)[:2000], pred_contrib=True)
        plots.roc_plot(y, scores, out / "plots" / "roc.png")
        plots.calibration_plot(y, p_test, out / "plots" / "calibration.png")
        plots.shap_summary_plot(np.asarray(contrib)[:, :-1], test[features].iloc[:2000],
                                out / "plots" / "shap_summary.png")
        gain = pd.Series(booster.feature_importance("gain"), index=features)
        plots.importance_plot(gain, out / "plots" / "importance.png")
        report = {"product": spec.name, "test": m_model, "glm": m_glm, "findrisc_roc_auc": findrisc_auc,
                  "ceiling": ceiling, "explanation_ms_per_row": cost, "notes": notes,
                  "monotone": dict(zip(features, monotone, strict=True)), "monotone_overrides": overrides,
                  "gain_share": {f: float(g) / max(float(gain.sum()), 1e-12) for f, g in gain.items()}}
        (out / "evaluation" / "report.json").write_text(json.dumps(report, indent=2, default=float))
        decile_lift(y, p_test).to_csv(out / "evaluation" / "lift.csv", index=False)
        groups.table.to_csv(out / "evaluation" / "subgroups.csv", index=False)
        (out / "evaluation" / "subgroup_check.json").write_text(json.dumps(
            {"bounds": spec.gate.subgroups.model_dump(), "flags": groups.flags, "not_judged": groups.not_judged},
            indent=2))
        gain.sort_values(ascending=False).to_csv(out / "evaluation" / "importance.csv", header=["gain"])
        # Every snapshot feature, not only this model's: the gate scores the champion on these rows too.
        every = [c for c in (meta.get("features") or features) if c in test.columns]
        segment = [c for c in ("region",) if c in test.columns]  # calibration by region in the portfolio report
        test_set = test[[*every, "label", "sex", *segment, "index_date"]].copy()
        test_set.insert(0, "member_ref", member_refs(test["member_id"], pepper))
        test_set.to_parquet(out / TEST_SET_ARTIFACT, index=False)
        (out / "product.yaml").write_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
        (out / "data_fingerprint.json").write_text(json.dumps(data_fingerprint(snapshot, frame, meta), indent=2))
        mlflow.log_artifacts(str(out))
    return groups.flags

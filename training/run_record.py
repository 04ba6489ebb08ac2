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

from chronorisk.data.declaration import FeatureSpec
from chronorisk.data.pseudonym import member_refs
from chronorisk.model.bundle import Scorer, model_kind, sha256_file
from chronorisk.model.calibration import HazardCalibrator, PlattCalibrator
from chronorisk.model.product import ProductSpec
from chronorisk.model.profile import ReferenceProfile, build_reference
from features.custom import custom_registry
from features.registry import FeatureRegistry, default_registry
from training import plots
from training.evaluate import decile_lift
from training.fit import DEFAULT_PARAMS
from training.gate import TEST_SET_ARTIFACT
from training.subgroups import subgroup_check, subgroup_metric_names

SUBGROUP_NOTE = "SUBGROUP GAP: "


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

    @property
    def subgroup_flags(self) -> list[str]:
        """The run's subgroup gaps beyond their bounds, as `log_run` noted them (both training paths)."""
        return [n.removeprefix(SUBGROUP_NOTE) for n in self.notes if n.startswith(SUBGROUP_NOTE)]


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


def input_example(train: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """A synthetic row of feature medians (never a member's record); 0.0 where a feature is all missing."""
    med = train[features].median(numeric_only=True).reindex(features).fillna(0.0)
    return pd.DataFrame([med.to_numpy(dtype=float)], columns=features)


def reference_profile(spec: ProductSpec, train: pd.DataFrame, features: list[str], booster: Scorer,
                      calibrator: PlattCalibrator | HazardCalibrator) -> ReferenceProfile:
    """The monitor's reference: the training rows closest to deployment (the latest index date),
    binned as the monitor bins : today's applicants are compared with the
    most recent population the model learned from, not with an average over the calendar. An
    extract's rows are one snapshot per applicant, dated by each application: all of them."""
    if spec.outcome != "extract":
        train = train[train["index_date"] == train["index_date"].max()]
    x = train[features].to_numpy(dtype=float)
    p = calibrator.predict_proba(np.asarray(booster.predict(x, raw_score=True)))[:, 1]
    days = sorted({str(d)[:10] for d in train["index_date"].unique()})
    dates = ", ".join(days) if len(days) <= 3 else f"{days[0]} to {days[-1]}"
    return build_reference({f: x[:, i] for i, f in enumerate(features)}, p, list(spec.class_names(p)),
                           [c.name for c in spec.risk_classes], f"train split ({len(train):,} rows; {dates})")


def registry_of(meta: dict[str, Any]) -> FeatureRegistry:
    """The built-in registry, plus the custom features an imported snapshot declares in its metadata."""
    custom = [FeatureSpec(**spec) for spec in meta.get("custom_features") or []]
    return custom_registry(custom) if custom else default_registry()


def log_run(spec: ProductSpec, snapshot: Path, frame: pd.DataFrame, meta: dict[str, Any],
             parts: dict[str, pd.DataFrame], features: list[str], monotone: list[int], booster: Scorer,
             params: dict[str, Any], seed: int, m_model: dict[str, float], m_glm: dict[str, float],
             findrisc_auc: float | None, ceiling: dict[str, Any], cost: float, p_test: np.ndarray,
             scores: dict[str, np.ndarray], pepper: bytes, notes: list[str]) -> None:
    """Log the run so the gate and the model card can judge it later without the data: figures and
    tags, plots, the subgroup check, and the test set with member references HMAC'd, never ids."""
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

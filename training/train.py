"""`chronorisk train`: one product's model, its baselines and its evaluation, as one MLflow run.

Out-of-time split from the product spec; LightGBM with monotone constraints and early stopping
on validation; Platt calibration on validation; GLM and (for diabetes) FINDRISC on the same test
rows; the true-risk ceiling and leakage alarm where the data has generator truth. The run ends
with a registered version aliased `challenger`; `chronorisk promote` decides the rest.
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
from mlflow import MlflowClient

from chronorisk.data.declaration import FeatureSpec
from chronorisk.data.pseudonym import member_refs
from chronorisk.model.bundle import Scorer, model_kind, sha256_file, write_bundle
from chronorisk.model.calibration import HazardCalibrator, PlattCalibrator
from chronorisk.model.card import log_model_card
from chronorisk.model.product import ProductSpec
from chronorisk.model.profile import ReferenceProfile, build_reference
from chronorisk.model.registry import experiment, register
from features.custom import custom_registry
from features.registry import FeatureRegistry, default_registry
from training import plots
from training.baselines import findrisc_from_features, fit_glm
from training.censored import censored_concordance, choose, fit_drop_censored, fit_hazard, followup_table
from training.evaluate import decile_lift, metrics, safe_auc, true_risk_ceiling
from training.fit import DEFAULT_PARAMS, explanation_cost_ms, fit_booster, monotone_vector
from training.gate import TEST_SET_ARTIFACT
from training.snapshot import read_snapshot, snapshot_meta
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
        """The run's subgroup gaps beyond their bounds, as `_log_run` noted them (both training paths)."""
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


def _input_example(train: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """A synthetic row of feature medians (never a member's record); 0.0 where a feature is all missing."""
    med = train[features].median(numeric_only=True).reindex(features).fillna(0.0)
    return pd.DataFrame([med.to_numpy(dtype=float)], columns=features)


def split_parts(spec: ProductSpec, frame: pd.DataFrame) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Train, validation and (complete-follow-up) test rows, and the test members' rows without
    complete follow-up, which only a censoring-aware metric can judge."""
    split = frame["split"]
    complete = frame["complete"].to_numpy(dtype=bool) if "complete" in frame else np.ones(len(frame), dtype=bool)
    parts = {name: frame[(split == name).to_numpy() & (complete | (name != "test"))].reset_index(drop=True)
             for name in ("train", "validation", "test")}
    late = frame[(split == "test_censored").to_numpy() | ((split == "test").to_numpy() & ~complete)]
    return parts, late.reset_index(drop=True)


def log_comparison(comparison: dict[str, Any]) -> None:
    """Both candidates' test figures (same rows), their censoring-aware C and the rows by follow-up."""
    mlflow.log_dict(comparison, "evaluation/candidates.json")
    figures = {f"candidate_{name}_test_{k}": v for name, f in comparison["candidates"].items()
               for k, v in f.items() if k in ("roc_auc", "ece", "calibration_slope", "brier")}
    figures |= {f"candidate_{name}_censored_uno_c": f["uno_c"] for name, f in comparison["censored_test"].items()
                if "uno_c" in f}
    mlflow.log_metrics({k: float(v) for k, v in figures.items() if v is not None and np.isfinite(v)})
    mlflow.set_tags({"model_kind": comparison["chosen"]})


def reference_profile(spec: ProductSpec, train: pd.DataFrame, features: list[str], booster: Scorer,
                      calibrator: PlattCalibrator | HazardCalibrator) -> ReferenceProfile:
    """The monitor's reference: the training rows closest to deployment (the latest index date),
    binned as the monitor bins (design.md decision 23): today's applicants are compared with the
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


def tune(x_tr: np.ndarray, y_tr: np.ndarray, x_va: np.ndarray, y_va: np.ndarray, features: list[str],
         monotone: list[int], seed: int, trials: int) -> dict[str, Any]:
    """Optuna search on validation AUC; every trial is a nested MLflow run."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    active = mlflow.active_run()
    parent_experiment = active.info.experiment_id if active else None

    def objective(trial: optuna.Trial) -> float:
        params = {
            "num_leaves": trial.suggest_int("num_leaves", 7, 63, log=True),
            "max_depth": trial.suggest_int("max_depth", 3, 8),
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.15, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 20, 400, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 0.1, 50.0, log=True),
        }
        with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True, experiment_id=parent_experiment):
            booster = fit_booster(x_tr, y_tr, x_va, y_va, features, monotone, seed, params)
            auc = safe_auc(y_va, np.asarray(booster.predict(x_va, raw_score=True)))
            mlflow.log_params(params)
            mlflow.log_metrics({"validation_roc_auc": auc, "num_trees": booster.num_trees()})
        return auc

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=trials)
    return dict(study.best_params)


def registry_of(meta: dict[str, Any]) -> FeatureRegistry:
    """The built-in registry, plus the custom features an imported snapshot declares in its metadata."""
    custom = [FeatureSpec(**spec) for spec in meta.get("custom_features") or []]
    return custom_registry(custom) if custom else default_registry()


def train_product(spec: ProductSpec, snapshot: Path, *, artifact_root: Path, pepper: bytes, seed: int = 7,
                  params: dict[str, Any] | None = None, tune_trials: int = 0, register_model: bool = True,
                  run_name: str | None = None) -> TrainResult:
    """Train, evaluate and log one run; MLflow's tracking URI must already be set."""
    frame = read_snapshot(snapshot)
    meta: dict[str, Any] = snapshot_meta(snapshot)
    registry = registry_of(meta)
    features = spec.feature_names(list(meta.get("features") or registry.names()))
    if spec.outcome == "extract":  # `features: all` means what the extract fills: no column it never had
        unfilled = [f for f in features if frame[f].nunique(dropna=True) < 2]
        features = [f for f in features if f not in set(unfilled)]
        meta = {**meta, "unfilled_features": unfilled}
    monotone = monotone_vector(features, registry.directions(), dict(spec.monotone_overrides))
    if len(frame) < spec.small_data.max_rows:  # small data: repeated k-fold (training/train_small.py)
        from training.train_small import train_small

        return train_small(spec, snapshot, frame, meta, features, monotone, artifact_root=artifact_root,
                           pepper=pepper, seed=seed, params=params, register_model=register_model, run_name=run_name)
    parts, late = split_parts(spec, frame)
    empty = [name for name, part in parts.items() if part.empty or part["label"].sum() == 0]
    if empty:
        raise ValueError(f"snapshot {snapshot}: no rows or no events in {empty}; cannot train {spec.name}")
    x = {k: v[features].to_numpy(dtype=float) for k, v in parts.items()}
    y = {k: v["label"].to_numpy(dtype=int) for k, v in parts.items()}
    # The GLM and tuning learn the horizon label, so only from rows that observed the whole horizon.
    done = {k: v["complete"].to_numpy(dtype=bool) if "complete" in v else np.ones(len(v), dtype=bool)
            for k, v in parts.items()}
    notes: list[str] = []
    comparison: dict[str, Any] = {}
    exp_id = experiment(f"chronorisk-{spec.name}", artifact_root)
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name or f"{spec.name}-seed{seed}") as run:
        chosen = {**dict(spec.model_params), **(params or {})}
        if tune_trials:
            chosen.update(tune(x["train"][done["train"]], y["train"][done["train"]], x["validation"][
                done["validation"]], y["validation"][done["validation"]], features, monotone, seed, tune_trials))
        if spec.split is not None and spec.split.scheme == "member_and_time":
            horizon = spec.horizon_years
            candidates = [fit_hazard(parts["train"], parts["validation"], features, monotone, seed, chosen, horizon,
                                     spec.recency_half_life_years),
                          fit_drop_censored(parts["train"], parts["validation"], features, monotone, seed, chosen)]
            best, comparison = choose(candidates, x["test"], y["test"])
            booster, calibrator = best.booster, best.calibrator
            comparison["censored_test"] = {c.name: censored_concordance(late, c.proba(late[features].to_numpy(
                dtype=float)), horizon) for c in candidates}
            comparison["rows_by_followup"] = followup_table(frame, horizon)
            notes.append(f"model: {best.name} (test AUC " + ", ".join(
                f"{n} {f['roc_auc']:.4f}" for n, f in comparison["candidates"].items()) + ")")
        else:
            booster = fit_booster(x["train"], y["train"], x["validation"], y["validation"], features, monotone, seed,
                                  chosen)
            calibrator = PlattCalibrator().fit(np.asarray(booster.predict(x["validation"], raw_score=True)),
                                               y["validation"])
        p_test = calibrator.predict_proba(np.asarray(booster.predict(x["test"], raw_score=True)))[:, 1]
        glm = fit_glm(x["train"][done["train"]], y["train"][done["train"]], seed)
        p_glm = glm.predict_proba(x["test"])[:, 1]
        m_model, m_glm = metrics(y["test"], p_test), metrics(y["test"], p_glm)
        findrisc_auc = None
        scores = {"LightGBM (calibrated)": p_test, "GLM": p_glm}
        if spec.baseline_score == "findrisc":
            points = findrisc_from_features(parts["test"]).to_numpy(dtype=float)
            findrisc_auc = safe_auc(y["test"], points)
            scores["FINDRISC"] = points
        if m_glm["roc_auc"] >= m_model["roc_auc"]:
            notes.append(f"the GLM matches or beats LightGBM on test AUC ({m_glm['roc_auc']:.4f} vs "
                         f"{m_model['roc_auc']:.4f}); the gate decides")
        ceiling = true_risk_ceiling(parts["test"], p_test, Path(meta["data_dir"]) if meta.get("data_dir") else None,
                                    spec.name, spec.horizon_years)
        if ceiling.get("leakage_alarm"):
            notes.append(f"LEAKAGE ALARM: AUC against true onset {ceiling['model_auc_vs_true_onset']:.4f} exceeds "
                         f"the true-risk ceiling {ceiling['ceiling_auc']:.4f} by more than 0.01; this is a bug, not "
                         "a triumph, and the gate will refuse this model")
        cost = explanation_cost_ms(booster, x["test"][0])
        if comparison:
            log_comparison(comparison)
        _log_run(spec, snapshot, frame, meta, parts, features, monotone, booster, chosen, seed, m_model, m_glm,
                 findrisc_auc, ceiling, cost, p_test, scores, pepper, notes)
        version = None
        if register_model:
            with tempfile.TemporaryDirectory(prefix="bundle-") as tmp:
                reference = reference_profile(spec, parts["train"], features, booster, calibrator)
                hashes = write_bundle(Path(tmp), booster, calibrator, features, monotone, spec, reference,
                                      [registry[f] for f in features if registry[f].source == "custom"])
                example = _input_example(parts["train"], features)
                out_example = calibrator.predict_proba(np.asarray(booster.predict(example.to_numpy(), raw_score=True)))
                mv = register(Path(tmp), hashes, example, out_example[:, 1], spec.name,
                              {"product": spec.name, "test_roc_auc": f"{m_model['roc_auc']:.4f}",
                               "leakage_alarm": str(bool(ceiling.get("leakage_alarm"))).lower()})
                version = str(mv.version)
            log_model_card(MlflowClient(), spec.name, version)
        return TrainResult(run.info.run_id, version, m_model, m_glm, findrisc_auc, ceiling, cost,
                           {**DEFAULT_PARAMS, **chosen}, p_test, notes)


def _log_run(spec: ProductSpec, snapshot: Path, frame: pd.DataFrame, meta: dict[str, Any],
             parts: dict[str, pd.DataFrame], features: list[str], monotone: list[int], booster: Scorer,
             params: dict[str, Any], seed: int, m_model: dict[str, float], m_glm: dict[str, float],
             findrisc_auc: float | None, ceiling: dict[str, Any], cost: float, p_test: np.ndarray,
             scores: dict[str, np.ndarray], pepper: bytes, notes: list[str]) -> None:
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

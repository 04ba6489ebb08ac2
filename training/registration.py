"""Registering a trained model as a version, the same way on both training paths: the
pickle-free bundle with the monitor's reference profile and any custom features' declarations, a
synthetic input example, the registry's tags, and the model card.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow import MlflowClient

from chronorisk.data.declaration import FeatureSpec
from chronorisk.model.bundle import Scorer, write_bundle
from chronorisk.model.calibration import HazardCalibrator, PlattCalibrator
from chronorisk.model.card import log_model_card
from chronorisk.model.product import ProductSpec
from chronorisk.model.profile import ReferenceProfile, build_reference
from chronorisk.model.registry import register
from features.custom import custom_registry
from features.registry import FeatureRegistry, default_registry


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


def register_version(spec: ProductSpec, model: Scorer, calibrator: PlattCalibrator | HazardCalibrator,
                     features: list[str], monotone: list[int], meta: dict[str, Any], rows: pd.DataFrame,
                     test_auc: float, leakage_alarm: bool, tags: dict[str, str]) -> str:
    """Write the bundle, register it (aliased `challenger` by the registry) and log its model card;
    `rows` are those the model learned from, for the reference profile and the input example."""
    registry = registry_of(meta)
    custom = [registry[f] for f in features if registry[f].source == "custom"]
    with tempfile.TemporaryDirectory(prefix="bundle-") as tmp:
        reference = reference_profile(spec, rows, features, model, calibrator)
        hashes = write_bundle(Path(tmp), model, calibrator, features, monotone, spec, reference, custom)
        example = input_example(rows, features)
        out_example = calibrator.predict_proba(np.asarray(model.predict(example.to_numpy(), raw_score=True)))
        mv = register(Path(tmp), hashes, example, out_example[:, 1], spec.name,
                      {"product": spec.name, "test_roc_auc": f"{test_auc:.4f}", **tags,
                       "leakage_alarm": str(leakage_alarm).lower()})
        version = str(mv.version)
    log_model_card(MlflowClient(), spec.name, version)
    return version

"""The numbers of the portfolio report: importance, segments, risk classes, calibration by segment.

Plain functions from SHAP matrices, probabilities and segment labels to small frames; the
figures and the HTML only draw what these return, so every number shown can be tested.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from chronorisk.model.product import ProductSpec
from features.registry import FeatureRegistry
from training.evaluate import safe_auc

MIN_SEGMENT_ROWS = 20  # smaller segments are listed with their size but no rates


def global_importance(contrib: np.ndarray, features: list[str], registry: FeatureRegistry) -> pd.DataFrame:
    """Mean |SHAP| per feature (log-odds), highest first, with the registry's plain description."""
    shap = contrib[:, : len(features)]
    mean_abs = np.abs(shap).mean(axis=0) if len(shap) else np.zeros(len(features))
    frame = pd.DataFrame({
        "feature": features,
        "description": [registry[f].description if f in registry else f for f in features],
        "mean_abs_shap": mean_abs,
        "mean_shap": shap.mean(axis=0) if len(shap) else np.zeros(len(features)),
    })
    total = float(frame["mean_abs_shap"].sum())
    frame["share"] = frame["mean_abs_shap"] / total if total > 0 else 0.0
    return frame.sort_values("mean_abs_shap", ascending=False, kind="stable", ignore_index=True)


def segment_importance(contrib: np.ndarray, features: list[str], labels: pd.Series, top: list[str]) -> pd.DataFrame:
    """Mean |SHAP| of the `top` features within each segment value (rows: features; columns: values)."""
    idx = [features.index(f) for f in top]
    values = sorted(labels.unique())
    data = {v: np.abs(contrib[(labels == v).to_numpy()][:, idx]).mean(axis=0) for v in values}
    return pd.DataFrame(data, index=pd.Index(top, name="feature"))


def segment_risk(p: np.ndarray, labels: pd.Series, spec: ProductSpec) -> pd.DataFrame:
    """Per segment value: members, mean calibrated risk, expected claims and the share in each class."""
    names = [c.name for c in spec.risk_classes]
    cls = spec.class_index(p)
    rows = []
    for v in sorted(labels.unique()):
        mask = (labels == v).to_numpy()
        row: dict[str, object] = {"segment": v, "members": int(mask.sum()), "mean_risk": float(p[mask].mean()),
                                  "expected_claims": float(p[mask].sum())}
        for i, name in enumerate(names):
            row[f"share_{name}"] = float((cls[mask] == i).mean())
        rows.append(row)
    return pd.DataFrame(rows)


def class_drivers(contrib: np.ndarray, features: list[str], p: np.ndarray, spec: ProductSpec) -> pd.DataFrame:
    """Mean SHAP of every feature within each risk class (columns in the spec's order; empty classes omitted)."""
    cls = spec.class_index(p)
    data = {c.name: contrib[cls == i, : len(features)].mean(axis=0)
            for i, c in enumerate(spec.risk_classes) if (cls == i).any()}
    return pd.DataFrame(data, index=pd.Index(features, name="feature"))


def class_members(p: np.ndarray, spec: ProductSpec) -> pd.Series:
    cls = spec.class_index(p)
    return pd.Series({c.name: int((cls == i).sum()) for i, c in enumerate(spec.risk_classes)}, name="members")


def separating_features(drivers: pd.DataFrame, lower: str, higher: str, top: int = 8) -> pd.DataFrame:
    """Features whose mean SHAP differs most between two classes: what separates them."""
    if lower not in drivers or higher not in drivers:
        return pd.DataFrame(columns=["feature", lower, higher, "difference"])
    diff = (drivers[higher] - drivers[lower]).rename("difference")
    order = diff.abs().sort_values(ascending=False, kind="stable").index[:top]
    return pd.DataFrame({"feature": order, lower: drivers.loc[order, lower].to_numpy(),
                         higher: drivers.loc[order, higher].to_numpy(), "difference": diff[order].to_numpy()})


def calibration_by_segment(y: np.ndarray, p: np.ndarray, labels: pd.Series) -> pd.DataFrame:
    """Per segment value of the test set: rows, events, mean predicted, observed rate, O/E, AUC."""
    rows = []
    for v in sorted(labels.unique()):
        mask = (labels == v).to_numpy()
        n, events = int(mask.sum()), int(y[mask].sum())
        small = n < MIN_SEGMENT_ROWS
        predicted = float(p[mask].mean()) if n else float("nan")
        observed = float(y[mask].mean()) if n else float("nan")
        rows.append({"segment": v, "rows": n, "events": events,
                     "mean_predicted": predicted, "observed_rate": observed,
                     "observed_over_expected": float("nan") if small or predicted == 0 else observed / predicted,
                     "roc_auc": float("nan") if small else safe_auc(y[mask], p[mask])})
    return pd.DataFrame(rows)


def calibration_curve_by_segment(y: np.ndarray, p: np.ndarray, labels: pd.Series, bins: int = 5,
                                 ) -> dict[str, pd.DataFrame]:
    """Equal-frequency bins of predicted risk within each segment value: mean predicted, observed."""
    out = {}
    for v in sorted(labels.unique()):
        mask = (labels == v).to_numpy()
        if mask.sum() < MIN_SEGMENT_ROWS * bins:
            continue
        ranks = pd.Series(p[mask]).rank(method="first").to_numpy()
        b = np.minimum((ranks - 1) * bins // mask.sum(), bins - 1).astype(int)
        frame = pd.DataFrame({"bin": b, "p": p[mask], "y": y[mask]}).groupby("bin").agg(
            mean_predicted=("p", "mean"), observed_rate=("y", "mean"), rows=("y", "size"))
        out[v] = frame.reset_index()
    return out

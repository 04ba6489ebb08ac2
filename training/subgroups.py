"""Subgroup checks: AUC, calibration and risk-class mix by sex and age band, and the gaps the gate
judges (decision 10; reliability.md's unfair-discrimination row).

The same function runs in every training run (logged, flagged in the run) and in the gate (on
the challenger's test set), so a flag in the run and a refusal at the gate mean the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from chronorisk.model.product import ProductSpec, SubgroupBounds
from training.evaluate import age_band, metrics


@dataclass
class SubgroupCheck:
    """The per-subgroup table and the gaps beyond their bounds, each as a sentence."""

    table: pd.DataFrame
    flags: list[str] = field(default_factory=list)
    not_judged: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.flags


def subgroup_table(frame: pd.DataFrame, p: np.ndarray, spec: ProductSpec) -> pd.DataFrame:
    """One row per subgroup (sex, age band): rows, events, AUC, ECE, observed and predicted rate,
    calibration gap and the share of each risk class."""
    y = frame["label"].to_numpy(dtype=int)
    p = np.asarray(p, dtype=float)
    classes = spec.class_names(p)
    overall = np.ones(len(frame), dtype=bool)
    kinds = (("all", pd.Series("all", index=frame.index, dtype="object")),
             ("sex", frame["sex"].astype("object")), ("age_band", age_band(frame["age_years"])))
    rows = []
    for kind, groups in kinds:
        for value in sorted(groups.dropna().unique()):
            mask = overall if kind == "all" else (groups == value).to_numpy()
            if not mask.any():
                continue
            m = metrics(y[mask], p[mask])
            rows.append({"subgroup": kind, "value": str(value), "rows": int(mask.sum()), "events": int(y[mask].sum()),
                         "roc_auc": m["roc_auc"], "ece": m["ece"], "observed_rate": m["event_rate"],
                         "mean_predicted": m["mean_predicted"],
                         "calibration_gap": abs(m["event_rate"] - m["mean_predicted"]),
                         **{f"class_{c.name}": float(np.mean(classes[mask] == c.name)) for c in spec.risk_classes}})
    return pd.DataFrame(rows)


def check_subgroups(table: pd.DataFrame, bounds: SubgroupBounds) -> SubgroupCheck:
    """Flag AUC gaps between subgroups of one kind, and calibration gaps within a subgroup."""
    check = SubgroupCheck(table=table)
    parts = table[table["subgroup"] != "all"]
    judged = (parts["rows"] >= bounds.min_rows) & (parts["events"] >= bounds.min_events)
    for _, row in parts[~judged].iterrows():
        check.not_judged.append(f"{row['subgroup']}={row['value']} ({row['rows']} rows, {row['events']} events; "
                                f"needs {bounds.min_rows} and {bounds.min_events})")
    parts = parts[judged]
    for _, row in parts.iterrows():
        if row["calibration_gap"] > bounds.max_calibration_gap:
            check.flags.append(f"{row['subgroup']}={row['value']}: calibration gap {row['calibration_gap']:.4f} "
                               f"(observed {row['observed_rate']:.4f}, predicted {row['mean_predicted']:.4f}) "
                               f"above {bounds.max_calibration_gap}")
    for kind, group in parts.groupby("subgroup", sort=True):
        aucs = group.dropna(subset=["roc_auc"])
        if len(aucs) < 2:
            continue
        best, worst = aucs.loc[aucs["roc_auc"].idxmax()], aucs.loc[aucs["roc_auc"].idxmin()]
        gap = float(best["roc_auc"] - worst["roc_auc"])
        if gap > bounds.max_auc_gap:
            check.flags.append(f"{kind}: AUC gap {gap:.4f} between {best['value']} ({best['roc_auc']:.4f}) and "
                               f"{worst['value']} ({worst['roc_auc']:.4f}) above {bounds.max_auc_gap}")
    return check


def subgroup_check(frame: pd.DataFrame, p: np.ndarray, spec: ProductSpec) -> SubgroupCheck:
    return check_subgroups(subgroup_table(frame, p, spec), spec.gate.subgroups)


def subgroup_metric_names(table: pd.DataFrame) -> dict[str, float]:
    """Flat MLflow metric names, e.g. `subgroup_sex_F_roc_auc`, for the judged figures."""
    out: dict[str, float] = {}
    for _, row in table[table["subgroup"] != "all"].iterrows():
        stem = f"subgroup_{row['subgroup']}_{row['value']}".replace("+", "plus").replace("-", "_")
        for key in ("roc_auc", "ece", "calibration_gap", "observed_rate", "mean_predicted"):
            value = float(row[key])
            if np.isfinite(value):
                out[f"{stem}_{key}"] = value
    return out

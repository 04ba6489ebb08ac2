"""Evaluation of calibrated scores: discrimination, calibration, lift, subgroups and the ceiling.

Every model and baseline of a run is evaluated by the same functions on the same test rows,
so the numbers side by side in MLflow mean the same thing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

AGE_BANDS = ((0, 45, "25-44"), (45, 65, "45-64"), (65, 200, "65+"))
LEAKAGE_TOLERANCE = 0.01


def safe_auc(y: np.ndarray, score: np.ndarray) -> float:
    y = np.asarray(y)
    return float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else float("nan")


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |observed - predicted| over equal-frequency bins, weighted by bin size."""
    order = np.argsort(p, kind="stable")
    groups = np.array_split(order, bins)
    n = len(p)
    return float(sum(len(g) / n * abs(np.mean(y[g]) - np.mean(p[g])) for g in groups if len(g)))


def calibration_slope_intercept(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Slope and intercept of the logistic recalibration y ~ logit(p); (1, 0) is perfect."""
    logit = np.log(np.clip(p, 1e-12, 1 - 1e-12) / np.clip(1 - p, 1e-12, 1)).reshape(-1, 1)
    if not 0 < y.sum() < len(y):
        return float("nan"), float("nan")
    model = LogisticRegression(C=np.inf, max_iter=1000).fit(logit, y)
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def decile_lift(y: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    """Ten equal-frequency bands of predicted risk, highest first: observed rate and lift."""
    order = np.argsort(-p, kind="stable")
    rows = []
    base = float(np.mean(y))
    for k, g in enumerate(np.array_split(order, 10), start=1):
        observed = float(np.mean(y[g]))
        rows.append({"decile": k, "rows": len(g), "mean_predicted": float(np.mean(p[g])), "observed_rate": observed,
                     "events": int(np.sum(y[g])), "lift": observed / base if base > 0 else float("nan")})
    return pd.DataFrame(rows)


def calibration_curve(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    order = np.argsort(p, kind="stable")
    return pd.DataFrame([{"mean_predicted": float(np.mean(p[g])), "observed_rate": float(np.mean(y[g])),
                          "rows": len(g)} for g in np.array_split(order, bins) if len(g)])


def metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    slope, intercept = calibration_slope_intercept(y, p)
    return {
        "roc_auc": safe_auc(y, p),
        "pr_auc": float(average_precision_score(y, p)) if y.sum() else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "calibration_slope": slope,
        "calibration_intercept": intercept,
        "event_rate": float(np.mean(y)),
        "mean_predicted": float(np.mean(p)),
        "rows": float(len(y)),
    }


def age_band(age: pd.Series) -> pd.Series:
    out = pd.Series("unknown", index=age.index, dtype="object")
    for low, high, label in AGE_BANDS:
        out[(age >= low) & (age < high)] = label
    return out


def true_onsets(test: pd.DataFrame, data_dir: Path | None, disease: str, horizon_years: int) -> pd.DataFrame | None:
    """The test rows truly free of the disease at the index date, with the generator's true risk
    (`true_risk`), true onset within the horizon (`y_true`) and their position in `test` (`row`);
    None where the data has no generator truth."""
    truth_dir = None if data_dir is None else Path(data_dir) / "_truth"
    if truth_dir is None or not (truth_dir / "yearly.parquet").exists():
        return None
    risk_col = f"true_risk_{disease}_{horizon_years}y"
    yearly = pd.read_parquet(truth_dir / "yearly.parquet",
                             columns=["member_id", "date", f"prevalent_{disease}", risk_col])
    members = pd.read_parquet(truth_dir / "members.parquet", columns=["member_id", f"{disease}_onset"])
    yearly["date"] = pd.to_datetime(yearly["date"]).astype("datetime64[s]")
    rows = test[["member_id", "index_date"]].assign(row=np.arange(len(test)))
    rows = rows.merge(yearly, left_on=["member_id", "index_date"], right_on=["member_id", "date"], how="inner")
    rows = rows.merge(members, on="member_id", how="left")
    rows = rows[~rows[f"prevalent_{disease}"].to_numpy(dtype=bool)]
    onset = pd.to_datetime(rows[f"{disease}_onset"])
    end = rows["index_date"] + pd.DateOffset(years=horizon_years)
    y_true = ((onset >= rows["index_date"]) & (onset < end)).fillna(False).to_numpy(dtype=int)
    return pd.DataFrame({"row": rows["row"].to_numpy(), "true_risk": rows[risk_col].to_numpy(dtype=float),
                         "y_true": y_true})


def true_risk_ceiling(test: pd.DataFrame, model_p: np.ndarray, data_dir: Path | None, disease: str,
                      horizon_years: int) -> dict[str, Any]:
    """The generator's true-risk AUC on the test rows truly free at the index date, against true
    onset in the horizon, and the model's AUC on the same rows (the leakage alarm compares them).

    Only where truth exists (synthetic data); otherwise says so.
    """
    rows = true_onsets(test, data_dir, disease, horizon_years)
    if rows is None:
        return {"available": False, "note": "no ceiling available: the data has no generator truth"}
    y_true = rows["y_true"].to_numpy()
    ceiling = safe_auc(y_true, rows["true_risk"].to_numpy())
    model_vs_truth = safe_auc(y_true, np.asarray(model_p)[rows["row"].to_numpy()])
    return {"available": True, "rows": len(rows), "true_onsets": int(y_true.sum()), "ceiling_auc": ceiling,
            "model_auc_vs_true_onset": model_vs_truth,
            "leakage_alarm": bool(model_vs_truth > ceiling + LEAKAGE_TOLERANCE)}

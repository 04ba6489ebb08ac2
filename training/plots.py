"""Figures of a training run: ROC, calibration, SHAP summary and feature importance (PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from training.evaluate import calibration_curve


def roc_plot(y: np.ndarray, scores: dict[str, np.ndarray], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, s in scores.items():
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC on the test rows")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def calibration_plot(y: np.ndarray, p: np.ndarray, path: Path) -> Path:
    curve = calibration_curve(y, p)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    top = float(max(curve["mean_predicted"].max(), curve["observed_rate"].max()) * 1.1)
    ax.plot([0, top], [0, top], color="grey", linestyle=":")
    ax.plot(curve["mean_predicted"], curve["observed_rate"], marker="o")
    ax.set(xlabel="mean predicted probability", ylabel="observed event rate",
           title="Calibration (10 equal-frequency bins)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def shap_summary_plot(contrib: np.ndarray, frame: pd.DataFrame, path: Path, max_display: int = 20) -> Path:
    import shap

    shap.summary_plot(contrib, frame, max_display=max_display, show=False, plot_size=(8, 7))
    fig = plt.gcf()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def importance_plot(importance: pd.Series, path: Path, top: int = 20) -> Path:
    imp = importance.sort_values(ascending=True).tail(top)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.barh(imp.index, imp.to_numpy())
    ax.set(xlabel="total gain", title="Feature importance (gain)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

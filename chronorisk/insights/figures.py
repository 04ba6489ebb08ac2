"""Figures of the portfolio report, drawn with matplotlib (and shap's beeswarm) into PNG bytes.

The report inlines them as data URIs, so it is one file that opens offline. Large portfolios
are drawn from a seeded sample of rows: a scatter of 100,000 points says no more than 5,000 and
takes minutes to draw; every figure says when it is a sample.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

PLOT_SAMPLE_ROWS = 5_000


def png(fig: Figure, dpi: int = 90) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def sample_rows(n: int, size: int = PLOT_SAMPLE_ROWS, seed: int = 7) -> np.ndarray:
    """Sorted row positions of a seeded sample (all rows when there are few)."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def importance_bars(importance: pd.DataFrame, top: int = 20) -> bytes:
    imp = importance.head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(imp) + 1.2))
    ax.barh([f"{d} ({f})" for f, d in zip(imp["feature"], imp["description"], strict=True)], imp["mean_abs_shap"],
            color="#3b6ea5")
    ax.set(xlabel="mean |SHAP| (log-odds)", title="What drives risk in the portfolio")
    return png(fig)


def beeswarm(contrib: np.ndarray, values: pd.DataFrame, max_display: int = 20) -> bytes:
    import shap

    shap.summary_plot(contrib, values, max_display=max_display, show=False, plot_size=(9, 0.4 * max_display + 1.5))
    return png(plt.gcf())


def strongest_interaction(contrib: np.ndarray, values: pd.DataFrame, feature: str) -> str:
    """The feature that best explains the spread of `feature`'s SHAP at a given value
    (shap.utils.approximate_interactions, the rule shap's own dependence plot colours by)."""
    from shap.utils import approximate_interactions

    j = list(values.columns).index(feature)
    order = approximate_interactions(j, contrib, values)
    candidates = [values.columns[i] for i in order if values.columns[i] != feature]
    return str(candidates[0]) if candidates else feature


def dependence(contrib: np.ndarray, values: pd.DataFrame, feature: str, colour_by: str, description: str) -> bytes:
    j, k = list(values.columns).index(feature), list(values.columns).index(colour_by)
    x, c = values.iloc[:, j].to_numpy(dtype=float), values.iloc[:, k].to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(6.2, 4.2))
    missing = np.isnan(c)
    ax.scatter(x[missing], contrib[missing, j], s=6, color="#bbbbbb", label=f"{colour_by} missing")
    points = ax.scatter(x[~missing], contrib[~missing, j], s=6, c=c[~missing], cmap="coolwarm")
    fig.colorbar(points, ax=ax, label=colour_by)
    ax.axhline(0, color="grey", linewidth=0.6)
    ax.set(xlabel=f"{feature}: {description}", ylabel=f"SHAP of {feature} (log-odds)",
           title=f"{feature}, coloured by {colour_by}")
    if missing.any():
        ax.legend(loc="best", fontsize=8)
    return png(fig)


def heatmap(table: pd.DataFrame, title: str, label: str, diverging: bool = False) -> bytes:
    fig, ax = plt.subplots(figsize=(1.1 * len(table.columns) + 4.5, 0.36 * len(table) + 1.6))
    data = table.to_numpy(dtype=float)
    if diverging:
        bound = float(np.nanmax(np.abs(data))) if data.size else 1.0
        im = ax.imshow(data, cmap="RdBu_r", vmin=-bound, vmax=bound, aspect="auto")
    else:
        im = ax.imshow(data, cmap="Blues", aspect="auto")
    ax.set_xticks(range(len(table.columns)), [str(c) for c in table.columns], rotation=30, ha="right")
    ax.set_yticks(range(len(table.index)), [str(i) for i in table.index])
    fig.colorbar(im, ax=ax, label=label)
    ax.set_title(title)
    return png(fig)


def segment_risk_bars(risks: dict[str, pd.DataFrame]) -> bytes:
    fig, axes = plt.subplots(1, len(risks), figsize=(3.4 * len(risks), 3.6), squeeze=False)
    for ax, (kind, frame) in zip(axes[0], risks.items(), strict=True):
        ax.bar(frame["segment"].astype(str), frame["mean_risk"] * 100, color="#c0504d")
        ax.set(title=kind, ylabel="mean risk (%)" if ax is axes[0][0] else None)
        ax.tick_params(axis="x", rotation=35)
    fig.suptitle("Mean calibrated risk by segment")
    fig.tight_layout()
    return png(fig)


def calibration_panels(curves: dict[str, dict[str, pd.DataFrame]]) -> bytes:
    fig, axes = plt.subplots(1, len(curves), figsize=(3.6 * len(curves), 3.8), squeeze=False)
    for ax, (kind, by_value) in zip(axes[0], curves.items(), strict=True):
        top = 0.0
        for value, frame in by_value.items():
            ax.plot(frame["mean_predicted"], frame["observed_rate"], marker="o", markersize=3, label=str(value))
            top = max(top, float(frame["mean_predicted"].max()), float(frame["observed_rate"].max()))
        ax.plot([0, top or 1], [0, top or 1], color="grey", linestyle=":")
        ax.set(title=kind, xlabel="mean predicted", ylabel="observed" if ax is axes[0][0] else None)
        if by_value:
            ax.legend(fontsize=7)
    fig.suptitle("Calibration by segment on the model's test set (quintiles of predicted risk)")
    fig.tight_layout()
    return png(fig)

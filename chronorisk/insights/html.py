"""The portfolio report as one self-contained HTML file: inline CSS, PNGs as data URIs, no scripts.

It opens offline and can be mailed as it is. Everything shown comes from `ReportContent`,
which `chronorisk/insights/report.py` fills; this module only lays it out and escapes it.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from chronorisk.insights.whatif import ScenarioResult

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px;
       color: #222; line-height: 1.45; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2rem; margin-top: 2.2rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .88rem; }
th, td { border: 1px solid #ddd; padding: .25rem .55rem; text-align: right; }
th { background: #f3f5f8; } td.l, th.l { text-align: left; }
img { max-width: 100%; display: block; margin: .5rem 0 1rem; }
.note { color: #555; font-size: .9rem; } .kpi { display: inline-block; margin-right: 2rem; }
.kpi b { font-size: 1.3rem; display: block; }
"""


@dataclass
class ReportContent:
    title: str
    model_label: str
    source: str
    members: int
    mean_risk: float
    expected_claims: float
    horizon_years: int
    additivity_max_gap: float
    class_members: pd.Series
    importance: pd.DataFrame
    importance_png: bytes
    beeswarm_png: bytes
    sample_rows: int
    dependence: list[tuple[str, str, bytes]]
    segment_importance: dict[str, pd.DataFrame]
    segment_importance_png: dict[str, bytes]
    segment_risk: dict[str, pd.DataFrame]
    segment_risk_png: bytes | None
    drivers: pd.DataFrame
    drivers_png: bytes
    separations: list[tuple[str, str, pd.DataFrame]]
    calibration: dict[str, pd.DataFrame]
    calibration_png: bytes | None
    calibration_note: str
    scenarios: list[ScenarioResult]
    descriptions: dict[str, str]
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def img(data: bytes | None, alt: str) -> str:
    if data is None:
        return ""
    return f'<img alt="{e(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}">'


def fmt(value: Any, kind: str = "") -> str:
    if isinstance(value, float):
        if pd.isna(value):
            return "-"
        if kind == "pct":
            return f"{value:.1%}"
        if kind == "int":
            return f"{value:,.0f}"
        return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return e(value)


def table(frame: pd.DataFrame, formats: dict[str, str] | None = None, index: bool = False) -> str:
    formats = formats or {}
    frame = frame.reset_index() if index else frame
    head = "".join(f'<th class="{"l" if frame[c].dtype == object or i == 0 else ""}">{e(c)}</th>'
                   for i, c in enumerate(frame.columns))
    rows = []
    for _, row in frame.iterrows():
        cells = []
        for i, c in enumerate(frame.columns):
            v = row[c]
            v = float(v) if hasattr(v, "dtype") and v.dtype.kind == "f" else (int(v) if hasattr(v, "dtype") and
                                                                              v.dtype.kind in "iu" else v)
            cells.append(f'<td class="{"l" if isinstance(v, str) or i == 0 else ""}">{fmt(v, formats.get(c, ""))}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _summary(c: ReportContent) -> str:
    classes = pd.DataFrame({"risk class": c.class_members.index, "members": c.class_members.to_numpy(),
                            "share": c.class_members.to_numpy() / max(c.members, 1)})
    counts = "".join(f"<li>{e(k)}: {v:,}</li>" for k, v in c.counts.items())
    notes = "".join(f"<li>{e(n)}</li>" for n in c.notes)
    return (f'<p><span class="kpi"><b>{c.members:,}</b>members</span>'
            f'<span class="kpi"><b>{c.mean_risk:.2%}</b>mean {c.horizon_years}-year risk</span>'
            f'<span class="kpi"><b>{c.expected_claims:,.1f}</b>expected claims (sum of probabilities)</span></p>'
            f'<p class="note">Model {e(c.model_label)}; portfolio: {e(c.source)}. SHAP values are LightGBM TreeSHAP '
            f"on the log-odds scale; for every member they add up to the model's raw score (largest gap "
            f"{c.additivity_max_gap:.2e}).</p>" + table(classes, {"share": "pct"})
            + (f'<p class="note">Counts:</p><ul class="note">{counts}</ul>' if counts else "")
            + (f'<ul class="note">{notes}</ul>' if notes else ""))


def _drivers(c: ReportContent) -> str:
    imp = c.importance.head(20)[["feature", "description", "mean_abs_shap", "mean_shap", "share"]]
    deps = "".join(f"<h3>{e(f)}: {e(c.descriptions.get(f, f))}</h3><p class=\"note\">Coloured by {e(p)} "
                   f"({e(c.descriptions.get(p, p))}), the feature that best explains the spread of its SHAP values "
                   f"(shap's approximate interaction ranking).</p>{img(png, f'dependence of {f}')}"
                   for f, p, png in c.dependence)
    return ("<h2>1. What drives risk: global importance</h2><p>Mean absolute SHAP value per feature: how far, on "
            "average, each feature moves a member's risk (log-odds) away from the portfolio's base value.</p>"
            + img(c.importance_png, "global importance") + table(imp, {"share": "pct"})
            + f"<h2>2. Beeswarm</h2><p class=\"note\">{c.sample_rows:,} members (a seeded sample when the "
              "portfolio is larger). Each dot is a member; colour is the feature's value (red high).</p>"
            + img(c.beeswarm_png, "beeswarm") + "<h2>3. Dependence of the top features</h2>" + deps)


def _segments(c: ReportContent) -> str:
    parts = ["<h2>4. Segments: importance and mean risk</h2>", img(c.segment_risk_png, "mean risk by segment")]
    for kind, frame in c.segment_risk.items():
        shares = {col: "pct" for col in frame.columns if col.startswith("share_")}
        parts.append(f"<h3>By {e(kind)}</h3>" + table(frame, {"mean_risk": "pct", **shares}))
        parts.append(img(c.segment_importance_png.get(kind), f"importance by {kind}"))
        parts.append(table(c.segment_importance[kind], index=True))
    return "".join(parts)


def _classes(c: ReportContent) -> str:
    parts = ["<h2>5. What drives each risk class</h2><p>Mean SHAP value of the top features within each risk "
             "class: positive pushes risk up.</p>", img(c.drivers_png, "mean SHAP by risk class"),
             table(c.drivers, index=True)]
    for lo, hi, frame in c.separations:
        parts.append(f"<h3>What separates {e(hi)} from {e(lo)}</h3>" + table(frame))
    return "".join(parts)


def _calibration(c: ReportContent) -> str:
    parts = [f"<h2>6. Calibration by segment</h2><p class=\"note\">{e(c.calibration_note)}</p>",
             img(c.calibration_png, "calibration by segment")]
    for kind, frame in c.calibration.items():
        parts.append(f"<h3>By {e(kind)}</h3>" + table(frame, {"mean_predicted": "pct", "observed_rate": "pct"}))
    return "".join(parts)


def _what_if(c: ReportContent) -> str:
    if not c.scenarios:
        return ("<h2>7. What-if scenarios</h2><p>No scenarios computed (none in the product YAML, or no raw "
                "records for this portfolio).</p>")
    rows = pd.DataFrame([{
        "scenario": s.name, "description": s.description, "members": s.members,
        "with the source data": s.with_source_data, "change risk class": s.changed_class,
        "to a lower class": s.moved_down, "to a higher class": s.moved_up,
        "expected claims before": s.expected_claims_before, "expected claims after": s.expected_claims_after,
        "change": s.expected_claims_change, "model: relative change": f"{s.model_relative_change:+.1%}",
        "truth: members free of it": s.true_members or "-",
        "truth: expected onsets before": "-" if s.true_onsets_before is None else f"{s.true_onsets_before:,.1f}",
        "truth: expected onsets after": "-" if s.true_onsets_after is None else f"{s.true_onsets_after:,.1f}",
        "truth: relative change": "-" if s.true_relative_change is None else f"{s.true_relative_change:+.1%}"}
        for s in c.scenarios])
    parts = ["<h2>7. What-if scenarios</h2><p>Each scenario edits the raw records (for example every wearable "
             "day's steps), reruns the feature function and re-scores with the model; it does not add up SHAP "
             "values. Members without the source data (no wearable, no recorded weight) are counted as unchanged. "
             "Expected claims are the sum of calibrated horizon probabilities. On synthetic data the generator's "
             "counterfactual truth stands beside it: the same members' true onset risk with the latent state "
             "edited the same way; the model predicts recorded events and the truth is onset, so compare the "
             "relative changes.</p>", table(rows)]
    for s in c.scenarios:
        parts.append(f"<h3>{e(s.name)}: risk class before (rows) and after (columns)</h3>"
                     + table(s.transitions, index=True))
    return "".join(parts)


def render(c: ReportContent) -> str:
    body = _summary(c) + _drivers(c) + _segments(c) + _classes(c) + _calibration(c) + _what_if(c)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(c.title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
            f"<style>{CSS}</style></head>"
            f"<body><h1>{e(c.title)}</h1>{body}</body></html>\n")

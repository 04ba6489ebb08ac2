"""The monitor's outputs: a JSON summary for schedulers and a self-contained HTML page for people.

The page needs nothing from the network (inline style, bars drawn with plain HTML), so it can be
attached to a ticket or archived as evidence of monitoring (NAIC, EU AI Act Art. 12).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from monitoring.drift import Drift, DriftResult

COLOURS = {"ok": "#2e7d32", "watch": "#ef6c00", "act": "#c62828"}


def write_json(result: DriftResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.summary(), indent=2) + "\n")


def _bars(d: Drift) -> str:
    e = html.escape
    peak = max([*d.expected, *d.actual, 1e-9])
    rows = []
    for label, ref, cur in zip(d.bins, d.expected, d.actual, strict=True):
        rows.append(f"<tr><td>{e(label)}</td><td>{ref:.1%}</td><td>{cur:.1%}</td><td class='bars'>"
                    f"<div class='r' style='width:{200 * ref / peak:.0f}px'></div>"
                    f"<div class='c' style='width:{200 * cur / peak:.0f}px'></div></td></tr>")
    return ("<table><tr><th>bin</th><th>reference</th><th>current</th><th>grey: reference, blue: current</th></tr>"
            + "".join(rows) + "</table>")


def render_html(result: DriftResult) -> str:
    e = html.escape
    cfg = result.config
    head = (f"<h1>Drift monitor: {e(result.product)} model v{e(result.model_version)}</h1>"
            f"<p>Source: {e(result.source)}; {result.rows:,} scored rows against a reference of "
            f"{result.reference_rows:,}. Thresholds: watch at PSI {cfg.watch}, act at {cfg.act}. Verdict: "
            f"<b style='color:{COLOURS[result.level]}'>{result.level.upper()}</b> (exit code {result.exit_code}).</p>")
    notes = "".join(f"<li>{e(n)}</li>" for n in result.notes)
    ordered = sorted(result.items, key=lambda d: -d.psi)
    table = ["<table><tr><th>quantity</th><th>kind</th><th>PSI</th><th>level</th><th>missing: reference</th>"
             "<th>missing: current</th><th>change</th><th>out of reference range</th></tr>"]
    for d in ordered:
        table.append(f"<tr><td>{e(d.name)}</td><td>{d.kind}</td><td>{d.psi:.4f}</td>"
                     f"<td style='color:{COLOURS[d.level]};font-weight:bold'>{d.level}</td>"
                     f"<td>{d.missing_reference:.1%}</td><td>{d.missing_current:.1%}</td>"
                     f"<td>{d.missing_change:+.1%}</td><td>{d.out_of_range:.1%}</td></tr>")
    table.append("</table>")
    detail = [f"<h3>{e(d.name)} (PSI {d.psi:.4f}, {d.level})</h3>{_bars(d)}"
              for d in ordered if d.kind != "feature" or d.level != "ok"]
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}table{border-collapse:collapse;"
             "margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}"
             "th{background:#f0f0f0}.bars div{height:7px;margin:1px 0}.r{background:#9e9e9e}.c{background:#1e88e5}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Drift monitor {e(result.product)}</title>"
            f"<style>{style}</style></head><body>{head}"
            f"{'<h2>Notes</h2><ul>' + notes + '</ul>' if notes else ''}"
            f"<h2>Population stability, worst first</h2>{''.join(table)}"
            f"<h2>Distributions: score, risk-class mix and every feature at watch or above</h2>{''.join(detail)}"
            "</body></html>\n")


def write_html(result: DriftResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(result))

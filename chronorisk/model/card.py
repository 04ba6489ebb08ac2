"""Model cards: what each registered version is for, what it learned from and how it performs for whom.

Generated from the version's MLflow run (its metrics, tags and evaluation artifacts), never from
numbers held in memory, so the card says what the run recorded. Written as Markdown and as a
self-contained HTML page, logged to the run under `model_card/`, with the SHA-256 of each on the
version's tags so the service serves only the card that was logged.
"""

from __future__ import annotations

import html
import io
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from mlflow import MlflowClient

from chronorisk.model.product import ProductSpec
from chronorisk.model.registry import model_name, resolve
from features.registry import default_registry

CARD_DIR = "model_card"
CARD_FILES = {"md": "model_card.md", "html": "model_card.html"}
CARD_TAG_PREFIX = "model_card_sha256."
LIMITATIONS = (
    "Scores the risk of one disease within the horizon; it is not a diagnosis and must not be used for one.",
    "Trained on recorded events: undiagnosed disease counts as no event, so absolute risks are of recorded onset.",
    "Members with little data (no labs, no wearable, few consultations) are scored mostly from age and the "
    "questionnaire, which is self-reported and sometimes optimistic.",
    "Performance outside the training period and population is not guaranteed; `chronorisk monitor` compares "
    "the scored population with this version's reference profile.",
    "Subgroups smaller than the gate's minimums are reported but not judged; their figures are noisy.",
)


@dataclass
class Section:
    """One heading with its sentences and an optional table: the card is a list of these, rendered twice."""

    title: str
    lines: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if value != value else f"{value:.{digits}f}"
    return str(value)


def _artifact_text(client: MlflowClient, run_id: str, path: str) -> str | None:
    with tempfile.TemporaryDirectory(prefix="card-") as tmp:
        try:
            local = client.download_artifacts(run_id, path, tmp)
        except Exception:  # an older run without this artifact: the card says so instead of failing
            return None
        return Path(local).read_text()


FAMILY_LABEL = {"lightgbm": "LightGBM", "glm": "GLM", "blend": "GLM + LightGBM blend"}
FAMILY_TEXT = {
    "lightgbm": "LightGBM gradient-boosted trees with the monotone constraints below, Platt or discrete-hazard "
                "calibrated; explanations are TreeSHAP values, exact for the raw score",
    "glm": "penalised logistic regression (median imputation with missing indicators, standardised values; "
           "training/glm.py, scored by chronorisk/model/linear.py), Platt calibrated; explanations are each "
           "feature's term minus its training mean, exact; "
           "the monotone constraints below bound the signs of its coefficients",
    "blend": "the GLM and a strongly regularised LightGBM averaged on the log-odds scale (chronorisk/model/blend.py), "
             "Platt calibrated; explanations are the weighted GLM terms plus TreeSHAP values, exact; the monotone "
             "constraints below bind both parts",
}


def card_sections(client: MlflowClient, product: str, version: str) -> tuple[str, list[Section]]:
    """The card's title and sections for one registered version, read from its run."""
    mv = resolve(client, product, version)
    if not mv.run_id:
        raise LookupError(f"model {mv.name} v{mv.version} has no training run to describe")
    run = client.get_run(mv.run_id)
    m = run.data.metrics
    spec = ProductSpec.model_validate(yaml.safe_load(_artifact_text(client, mv.run_id, "product.yaml") or "{}"))
    fingerprint = json.loads(_artifact_text(client, mv.run_id, "data_fingerprint.json") or "{}")
    report = json.loads(_artifact_text(client, mv.run_id, "evaluation/report.json") or "{}")
    check = json.loads(_artifact_text(client, mv.run_id, "evaluation/subgroup_check.json") or "{}")
    subgroups_csv = _artifact_text(client, mv.run_id, "evaluation/subgroups.csv")
    title = f"Model card: {spec.title} ({mv.name} v{mv.version})"
    family = run.data.tags.get("model_family", "lightgbm")
    sections = [
        Section("Intended use", [
            f"Scores the calibrated probability that an applicant or member has a first recorded {spec.disease} "
            f"event within {spec.horizon_years} years of the index date, for the single-disease product "
            f"'{spec.title}' ({spec.name}). Used by underwriters with the product's risk classes below; "
            "each score is explained by its 3-5 strongest risk-raising features.",
            f"Model: {FAMILY_TEXT.get(family, family)}.",
            f"Registered from MLflow run `{mv.run_id}`; gate verdict: {mv.tags.get('gate_verdict', 'not yet judged')}"
            + (f" ({mv.tags['gate_reasons']})." if mv.tags.get("gate_reasons") else "."),
            *([f"Champion since {mv.tags.get('champion_since', '-')}: {mv.tags['champion_how']}, by "
               f"{mv.tags.get('champion_by', '-')}; reason: {mv.tags.get('champion_reason', '-')}."]
              if mv.tags.get("champion_how") else []),
        ]),
        Section("Product", [_event_text(spec)],
                ["risk class", "probability below", "decision", "premium loading %"],
                [[c.name, _fmt(c.below), c.decision, _fmt(c.premium_loading_pct)] for c in spec.risk_classes]),
        Section("Data", [
            f"Snapshot SHA-256 `{fingerprint.get('snapshot_sha256', '-')}`, {fingerprint.get('rows', '-')} rows; "
            f"index dates {', '.join(fingerprint.get('index_dates', [])) or '-'}; extract date "
            f"{fingerprint.get('extract_date', '-')}.",
            _split_text(spec)],
            ["split", "rows", "events"],
            [[k, str(v), str(fingerprint.get("events_by_split", {}).get(k, "-"))]
             for k, v in fingerprint.get("rows_by_split", {}).items()]),
    ]
    registry = default_registry()
    monotone: dict[str, int] = report.get("monotone", {})
    overrides: dict[str, int] = report.get("monotone_overrides", {})
    gain: dict[str, float] = report.get("gain_share", {})
    direction = {1: "may only raise risk", -1: "may only lower risk", 0: "unconstrained"}
    unused = [f for f in monotone if f in gain and gain[f] == 0.0]
    sections.append(Section(
        "Features and monotone constraints",
        [f"{len(monotone)} features; {sum(1 for v in monotone.values() if v)} monotone constraints "
         f"(overrides from the product spec: {json.dumps(overrides) if overrides else 'none'}). A constraint says "
         "which way a feature is allowed to move the risk; the share of gain says how much the model uses it"
         + (f"; {len(unused)} features have no gain and do nothing." if unused else ".")],
        ["feature", "unit", "description", "constraint", "share of gain"],
        [[f, registry[f].unit if f in registry else "-", registry[f].description if f in registry else "-",
          direction.get(int(d), str(d)) + (" (override)" if f in overrides else ""),
          f"{gain[f]:.1%}" if f in gain else "-"] for f, d in monotone.items()]))
    overall = ["roc_auc", "pr_auc", "brier", "ece", "calibration_slope", "calibration_intercept", "event_rate",
               "mean_predicted"]
    sections.append(Section("Metrics on the test set (overall)", [
        f"{int(m.get('test_rows', 0))} test rows; explanation cost "
        f"{_fmt(m.get('explanation_ms_per_row'), 3)} ms per row."],
        ["metric", "value"], [[k, _fmt(m.get(f"test_{k}"))] for k in overall]))
    sub = Section("Metrics by subgroup (test set)")
    if subgroups_csv:
        table = pd.read_csv(io.StringIO(subgroups_csv), dtype={"value": str})
        sub.header = [str(c) for c in table.columns]
        sub.rows = [[_fmt(v) for v in row] for row in table.itertuples(index=False)]
    bounds = check.get("bounds", spec.gate.subgroups.model_dump())
    sub.lines = [f"Bounds: AUC gap between subgroups of one kind at most {bounds.get('max_auc_gap')}, calibration gap "
                 f"(|observed - predicted|) at most {bounds.get('max_calibration_gap')}; judged when a subgroup has "
                 f"at least {bounds.get('min_rows')} rows and {bounds.get('min_events')} events.",
                 "Flags: " + ("; ".join(check.get("flags", [])) or "none") + ".",
                 "Not judged: " + ("; ".join(check.get("not_judged", [])) or "none") + "."]
    sections.append(sub)
    ceiling = report.get("ceiling", {})
    sections.append(Section("Baselines", [
        "GLM and (where the product names one) a published score, on the same test rows; the true-risk ceiling "
        "only where generator truth exists."], ["model", "test ROC AUC"],
        [[f"{FAMILY_LABEL.get(family, family)} (calibrated, this version)", _fmt(m.get("test_roc_auc"))],
         ["GLM baseline", _fmt(m.get("test_glm_roc_auc"))],
         ["FINDRISC (points)", _fmt(m.get("test_findrisc_roc_auc"))],
         ["true-risk ceiling", _fmt(ceiling.get("ceiling_auc")) if ceiling.get("available")
          else "no ceiling available"]]))
    notes = [n for n in report.get("notes", []) if n]
    sections.append(Section("Limitations", [*LIMITATIONS, *(f"Run note: {n}" for n in notes)]))
    return title, sections


def render_markdown(title: str, sections: list[Section]) -> str:
    out = [f"# {title}", ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        out += [*(f"{line}\n" for line in s.lines)]
        if s.header:
            out += ["| " + " | ".join(s.header) + " |", "|" + " --- |" * len(s.header)]
            out += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in s.rows]
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def render_html(title: str, sections: list[Section]) -> str:
    """A self-contained page (inline style, no scripts, nothing fetched)."""
    e = html.escape
    body = [f"<h1>{e(title)}</h1>"]
    for s in sections:
        body.append(f"<h2>{e(s.title)}</h2>")
        body += [f"<p>{e(line)}</p>" for line in s.lines]
        if s.header:
            body.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in s.header) + "</tr>")
            body += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in s.rows]
            body.append("</table>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
             "font-size:13px;text-align:left}th{background:#f0f0f0}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{style}</style>"
            f"</head><body>{''.join(body)}</body></html>\n")


def log_model_card(client: MlflowClient, product: str, version: str) -> dict[str, str]:
    """Generate the card from the version's run, log both files to the run, tag their SHA-256."""
    from chronorisk.model.bundle import sha256_file

    title, sections = card_sections(client, product, version)
    mv = resolve(client, product, version)
    hashes: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="card-") as tmp:
        folder = Path(tmp)
        (folder / CARD_FILES["md"]).write_text(render_markdown(title, sections))
        (folder / CARD_FILES["html"]).write_text(render_html(title, sections))
        for fmt, name in CARD_FILES.items():
            hashes[fmt] = sha256_file(folder / name)
            client.set_model_version_tag(model_name(product), str(mv.version), CARD_TAG_PREFIX + fmt, hashes[fmt])
        client.log_artifacts(str(mv.run_id), str(folder), CARD_DIR)
    return hashes


def fetch_model_card(client: MlflowClient, product: str, version: str, fmt: str = "md") -> str:
    """The logged card of a version, after checking it against the SHA-256 on the version's tags."""
    import hashlib

    if fmt not in CARD_FILES:
        raise ValueError(f"format {fmt!r}: choose one of {', '.join(CARD_FILES)}")
    mv = resolve(client, product, version)
    expected = mv.tags.get(CARD_TAG_PREFIX + fmt)
    if expected is None:
        raise LookupError(f"model {mv.name} v{mv.version} has no model card (no {CARD_TAG_PREFIX}{fmt} tag)")
    text = _artifact_text(client, str(mv.run_id), f"{CARD_DIR}/{CARD_FILES[fmt]}")
    if text is None:
        raise LookupError(f"model {mv.name} v{mv.version}: the run has no {CARD_DIR}/{CARD_FILES[fmt]}")
    if hashlib.sha256(text.encode()).hexdigest() != expected:
        raise LookupError(f"model {mv.name} v{mv.version}: {CARD_FILES[fmt]} differs from the logged SHA-256")
    return text


def _event_text(spec: ProductSpec) -> str:
    ev = spec.event
    if ev is None:  # an imported extract's own outcome column
        return "Outcome: taken from the extract's outcome column (no event definition on records)."
    return (f"Event: ICD-10 {', '.join(ev.icd10_prefixes) or '-'}; ATC {', '.join(ev.atc_prefixes) or '-'}; labs "
            f"{', '.join(f'{t.test} >= {t.at_least}' for t in ev.lab_thresholds) or '-'}.")


def _split_text(spec: ProductSpec) -> str:
    if spec.split is None:
        return "Split: a stratified hold-out of the extract for the test, repeated k-fold on the rest."
    if spec.split.scheme == "member_and_time":
        return (f"Split by member and time: {spec.split.test_members:.0%} of members held out for test at "
                f"{', '.join(map(str, spec.split.test))} (complete follow-up), {spec.split.validation_members:.0%} "
                "for validation; the rest train at every index date, partially followed rows included.")
    return (f"Out-of-time split: train {', '.join(map(str, spec.split.train))}; validation "
            f"{', '.join(map(str, spec.split.validation))}; test {', '.join(map(str, spec.split.test))}.")

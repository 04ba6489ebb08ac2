"""The `chronorisk` command line: one Typer app with a sub-command per stage.

Every Make target calls this app; commands are thin wrappers that build settings, do the I/O
and hand frames to the product functions in `features`, `training` and `serving`.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from chronorisk.settings import Settings, load_settings

if TYPE_CHECKING:
    from chronorisk.data.rejections import ValidationReport

app = typer.Typer(help="chronorisk: chronic-disease risk scoring for single-disease insurance products.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
data_app = typer.Typer(help="Raw data: generate a synthetic cohort, validate a raw folder.", no_args_is_help=True)
app.add_typer(data_app, name="data")
features_app = typer.Typer(help="Point-in-time features: build a product's training snapshot.", no_args_is_help=True)
app.add_typer(features_app, name="features")
console = Console(width=None if sys.stdout.isatty() else 150)


@app.callback()
def main() -> None:
    """chronorisk: chronic-disease risk scoring for single-disease insurance products."""
    import os

    from serving.redaction import install_log_redaction

    # Everything this process writes (raw and scored data, quarantine files, mlflow.db, audit.db,
    # keys, reports) is health data or a secret: owner-only by default, whatever the caller's umask.
    os.umask(0o077)
    install_log_redaction()


def _say_environment(settings: Settings) -> None:
    """The demos run on embedded defaults only in development, chosen explicitly; they say so."""
    if settings.environment != "development":
        console.print(f"[red]the demo runs on embedded defaults (placeholder pepper, audit keys generated on first "
                      f"run); choose them with CHRONORISK_ENVIRONMENT=development (this is "
                      f"{settings.environment})[/red]")
        raise typer.Exit(code=2)
    pepper = "the placeholder pepper" if settings.id_pepper.get_secret_value() == "dev-pepper" else "your pepper"
    console.print(f"environment: development, chosen explicitly; member ids pseudonymised with {pepper}; "
                  f"audit keys in {settings.secrets_dir}/ (generated there, 0600, on first run)")


@data_app.command("synth")
def data_synth(
    members: Annotated[int, typer.Option(help="number of members to generate")] = 20_000,
    seed: Annotated[int, typer.Option(help="random seed; the same seed gives the same bytes")] = 7,
    out: Annotated[Path | None, typer.Option(help="output folder (default: settings data_dir)")] = None,
    profile: Annotated[Path | None, typer.Option(help="population profile YAML")] = None,
    workers: Annotated[int, typer.Option(help="processes generating blocks in parallel")] = 2,
    file_format: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
) -> None:
    """Generate a synthetic cohort: five raw tables plus the generator's truth in OUT/_truth/."""
    from chronorisk.synthetic.cohort import load_profile, synthesize

    settings = load_settings()
    out_dir = out or settings.data_dir
    prof = load_profile(profile or settings.profile)
    summary = synthesize(members=members, seed=seed, out_dir=out_dir, profile=prof,
                         workers=workers, file_format=file_format, progress=True)
    table = Table(title=f"synthetic cohort in {out_dir}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in summary.rows.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)


def print_rule_messages(report: ValidationReport) -> None:
    """Each broken rule in the words import, batch scoring and the service use (contracts.rule_message)."""
    from chronorisk.data.contracts import rule_message

    for name, t in report.tables.items():
        for label, count in t.by_rule.items():
            console.print(f"  {rule_message(name, label)}: {count:,} row{'s' if count != 1 else ''} quarantined")


@data_app.command("validate")
def data_validate(
    data_dir: Annotated[Path, typer.Argument(help="folder of raw parquet or csv tables")],
    strict: Annotated[bool, typer.Option(help="fail on the first rule broken instead of quarantining")] = False,
    extract_date: Annotated[
        str | None,
        typer.Option(help="latest valid record date (YYYY-MM-DD); default: the folder's _manifest.json, "
                     "else today"),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the report as JSON")] = None,
) -> None:
    """Validate every table of DATA_DIR against the contracts; quarantine bad rows to DATA_DIR/_rejected/."""
    from chronorisk.data.contracts import ContractError, validate_folder

    settings = load_settings()
    try:
        report = validate_folder(
            data_dir,
            strict=strict,
            extract_date=date.fromisoformat(extract_date) if extract_date else None,
            pepper=settings.id_pepper.get_secret_value().encode(),
        )
    except ContractError as err:
        console.print(f"[red]contract violated:[/red] {err}")
        raise typer.Exit(code=1) from err
    table = Table(title=f"validation of {data_dir}")
    for col in ("table", "read", "accepted", "rejected", "member_rejected", "rejected by rule"):
        table.add_column(col, justify="right" if col in ("read", "accepted", "rejected", "member_rejected") else "left")
    for name, t in report.tables.items():
        rules = ", ".join(f"{rule}: {n:,}" for rule, n in sorted(t.by_rule.items())) or "-"
        table.add_row(name, f"{t.read:,}", f"{t.accepted:,}", f"{t.rejected:,}", f"{t.member_rejected:,}", rules)
    console.print(table)
    print_rule_messages(report)
    if json_out:
        json_out.write_text(json.dumps(report.model_dump(mode="json"), indent=2))


@data_app.command("calibrate")
def data_calibrate(
    data_dir: Annotated[Path, typer.Argument(help="folder written by `data synth` (needs its _truth/)")],
) -> None:
    """Compare a synthetic cohort with the published targets; exit 1 if any is out of range."""
    from chronorisk.synthetic.calibration import calibration_checks, read_cohort_for_calibration

    checks = calibration_checks(**read_cohort_for_calibration(data_dir))
    table = Table(title=f"calibration of {data_dir} against ../shared/epidemiology.md")
    for col in ("check", "value", "range", "ok"):
        table.add_column(col, justify="left" if col == "check" else "right")
    for c in checks:
        table.add_row(c.name, f"{c.value:,.3f}", f"{c.low:g} to {c.high:g}",
                      "[green]yes[/green]" if c.passed else "[red]NO[/red]")
    console.print(table)
    if not all(c.passed for c in checks):
        raise typer.Exit(code=1)


@features_app.command("build")
def features_build(
    product: Annotated[str | None, typer.Option(help="product name (experiments/products/<name>.yaml) or YAML "
                                                     "path: builds its labelled training snapshot")] = None,
    index_date: Annotated[str | None, typer.Option(help="instead of a product: features of every member enrolled "
                                                        "on this date (YYYY-MM-DD), for batch scoring")] = None,
    history_days: Annotated[int | None, typer.Option(help="with --index-date: read only this many days of "
                                                          "records before it")] = None,
    data: Annotated[Path | None, typer.Option(help="raw data folder (default: settings data_dir)")] = None,
    out: Annotated[Path | None, typer.Option(help="output parquet (default: data/features/<product>.parquet)")
                   ] = None,
    chunk_members: Annotated[int, typer.Option(help="members per chunk; bounds memory")] = 20_000,
    runner: Annotated[str, typer.Option(help="chunked (in-process) or dask (local cluster)")] = "chunked",
    workers: Annotated[int, typer.Option(help="Dask workers (runner dask)")] = 2,
) -> None:
    """Build a product's training snapshot (index dates, labels, features), or features at one date."""
    from chronorisk.data.contracts import extract_date_of
    from chronorisk.model.product import load_product
    from features.runners import build_features_at
    from training.snapshot import build_snapshot, build_snapshot_dask

    if (product is None) == (index_date is None):
        raise typer.BadParameter("give exactly one of --product or --index-date")
    if runner not in ("chunked", "dask"):
        raise typer.BadParameter(f"runner must be chunked or dask, got {runner!r}")
    settings = load_settings()
    data_dir = data or settings.data_dir
    extract = extract_date_of(data_dir)
    pepper = settings.id_pepper.get_secret_value().encode()
    if index_date is not None:
        target = out or settings.features_dir / f"features-{index_date}.parquet"
        totals = build_features_at(data_dir, date.fromisoformat(index_date), target, extract_date=extract,
                                   pepper=pepper, history_days=history_days, chunk_members=chunk_members)
        title = f"features at {index_date} -> {target}"
    else:
        spec = load_product(str(product))
        target = out or settings.features_dir / f"{spec.name}.parquet"
        if spec.outcome == "extract":  # an imported extract labelled by its own outcome column
            from training.extract_snapshot import build_extract_snapshot

            try:
                counts = build_extract_snapshot(data_dir, spec, target, pepper=pepper,
                                                warn=lambda note: console.print(f"[yellow]warning:[/yellow] {note}"))
            except (ValueError, FileNotFoundError) as err:
                console.print(f"[red]features build failed:[/red] {err}")
                raise typer.Exit(code=1) from err
            console.print(f"{spec.name} snapshot -> {target}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
            return
        if runner == "chunked":
            totals = build_snapshot(data_dir, spec, target, extract_date=extract, pepper=pepper,
                                    chunk_members=chunk_members)
        else:
            totals = build_snapshot_dask(data_dir, spec, target, extract_date=extract, pepper=pepper,
                                         chunk_members=chunk_members, workers=workers)
        title = f"{spec.name} snapshot -> {target}"
    table = Table(title=title)
    table.add_column("count")
    table.add_column("value", justify="right")
    for key, value in totals.counts.items():
        table.add_row(key, f"{value:,}")
    for name, read in totals.read.items():
        table.add_row(f"{name}: read / accepted / rejected / member_rejected",
                      f"{read:,} / {totals.accepted[name]:,} / {totals.rejected[name]:,} / "
                      f"{totals.member_rejected[name]:,}")
    console.print(table)


@app.command("train")
def train(
    product: Annotated[str, typer.Option(help="product name or YAML path")],
    snapshot: Annotated[Path | None, typer.Option(help="snapshot parquet (default: data/features/<product>.parquet)")
                        ] = None,
    seed: Annotated[int, typer.Option(help="random seed; same seed and data give bit-identical predictions")] = 7,
    tune: Annotated[int, typer.Option("--tune", help="Optuna trials before the final fit (0: defaults)")] = 0,
) -> None:
    """Train a product's model with its baselines; log the run to MLflow and register a challenger."""
    from chronorisk.model.product import load_product
    from chronorisk.model.registry import connect
    from training.train import train_product

    settings = load_settings()
    spec = load_product(product)
    connect(settings.mlflow_tracking_uri)
    pepper = settings.id_pepper.get_secret_value().encode()
    result = train_product(spec, snapshot or settings.features_dir / f"{spec.name}.parquet",
                           artifact_root=settings.mlflow_artifacts, pepper=pepper, seed=seed, tune_trials=tune)
    table = Table(title=f"{spec.name}: run {result.run_id}, registered version {result.version} (challenger)")
    for col in ("model", "ROC AUC", "PR AUC", "Brier", "ECE", "cal. slope"):
        table.add_column(col, justify="left" if col == "model" else "right")
    rows = ((f"{result.model_family} (calibrated)", result.test_metrics), ("GLM baseline", result.glm_metrics))
    for name, m in rows:
        table.add_row(name, f"{m['roc_auc']:.4f}", f"{m['pr_auc']:.4f}", f"{m['brier']:.5f}", f"{m['ece']:.4f}",
                      f"{m['calibration_slope']:.3f}")
    if result.findrisc_auc is not None:
        table.add_row("FINDRISC (points)", f"{result.findrisc_auc:.4f}", "", "", "", "")
    console.print(table)
    c = result.ceiling
    if c.get("available"):
        ratio = c["model_auc_vs_true_onset"] / c["ceiling_auc"]
        console.print(f"true-risk ceiling AUC {c['ceiling_auc']:.4f}; model vs true onset "
                      f"{c['model_auc_vs_true_onset']:.4f} (ratio {ratio:.3f})")
    else:
        console.print(c.get("note", "no ceiling available"))
    console.print(f"explanation cost: {result.explanation_ms:.3f} ms per row (pred_contrib, one thread)")
    for note in result.notes:
        console.print(f"[bold red]{note}[/bold red]" if note.startswith("LEAKAGE") else f"[yellow]{note}[/yellow]")


@app.command("promote")
def promote(
    product: Annotated[str, typer.Option(help="product name or YAML path")],
    to: Annotated[str | None, typer.Option("--to", help="roll the champion back (or forward) to this version")
                  ] = None,
) -> None:
    """Run the gate: make the challenger champion only if it beats the champion on the same test data."""
    from chronorisk.model.product import load_product
    from chronorisk.model.registry import connect
    from training.gate import promote as run_gate

    settings = load_settings()
    spec = load_product(product)
    verdict = run_gate(connect(settings.mlflow_tracking_uri), spec.name, spec.gate, settings.promotion_log, to)
    colour = "green" if verdict.promote else "red"
    console.print(f"[{colour}]{verdict.explain()}[/{colour}]")
    if not verdict.promote:
        raise typer.Exit(code=3)


@app.command("retrain")
def retrain(
    product: Annotated[str, typer.Option(help="product name or YAML path")],
    data: Annotated[Path | None, typer.Option(help="raw data folder (default: settings data_dir)")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 7,
    tune: Annotated[int, typer.Option("--tune", help="Optuna trials (0: defaults)")] = 0,
) -> None:
    """Data check, features, train, evaluate and promote, in one command."""
    settings = load_settings()
    data_dir = data or settings.data_dir
    console.rule("1. data check")
    data_validate(data_dir=data_dir, strict=False, extract_date=None, json_out=None)
    console.rule("2. features")
    features_build(product=product, index_date=None, history_days=None, data=data_dir, out=None,
                   chunk_members=20_000, runner="chunked", workers=2)
    console.rule("3. train and evaluate")
    train(product=product, snapshot=None, seed=seed, tune=tune)
    console.rule("4. promotion gate")
    promote(product=product, to=None)


@app.command("demo")
def demo(
    members: Annotated[int, typer.Option(help="members in the demo cohort")] = 20_000,
    seed: Annotated[int, typer.Option(help="random seed")] = 7,
    out: Annotated[Path | None, typer.Option(help="raw data folder (default: settings data_dir)")] = None,
) -> None:
    """End to end on embedded defaults: generate, validate, calibrate, features, train, promote, serve one request."""
    settings = load_settings()
    _say_environment(settings)
    data_dir = out or settings.data_dir
    console.rule("1. synthetic cohort")
    data_synth(members=members, seed=seed, out=data_dir, profile=None, workers=2, file_format="parquet")
    console.rule("2. raw-data contracts")
    data_validate(data_dir=data_dir, strict=False, extract_date=None, json_out=None)
    console.rule("3. calibration against the epidemiology targets")
    try:
        data_calibrate(data_dir=data_dir)
    except typer.Exit:
        console.print("[yellow]some calibration checks are out of range at this cohort size[/yellow]")
    console.rule("4. point-in-time features: the diabetes training snapshot")
    features_build(product="diabetes", index_date=None, history_days=None, data=data_dir, out=None,
                   chunk_members=20_000, runner="chunked", workers=2)
    console.rule("5. training with MLflow: LightGBM, GLM and FINDRISC on the same test rows")
    train(product="diabetes", snapshot=None, seed=seed, tune=0)
    console.rule("6. promotion gate")
    try:
        promote(product="diabetes", to=None)
    except typer.Exit:
        console.print("[yellow]the gate refused the challenger; the champion stays as it was[/yellow]")
    console.rule("7. the BentoML service: one real scoring request over HTTP")
    from serving.demo import serve_and_score_once

    answer = serve_and_score_once(settings, data_dir, log=console.print)
    console.print_json(json.dumps(answer))


@app.command("import")
def import_extract(
    mapping: Annotated[Path, typer.Option(help="mapping YAML (experiments/mappings/*.yaml): names, units, codes")],
    out: Annotated[Path, typer.Option(help="raw folder to write; then `features build --data OUT`, `train`")],
    source: Annotated[Path | None, typer.Option(help="read this file (flat) or folder (relational) instead of the "
                                                     "mapping's source.path: one mapping for the training and "
                                                     "the scoring extract")] = None,
    strict: Annotated[bool, typer.Option(help="fail on the first contract rule broken or on duplicate rows "
                                              "instead of quarantining and reporting; nothing is written")] = False,
) -> None:
    """Map an insurer's extract (flat or relational) onto the raw-data contracts, validate it and
    quarantine bad rows to OUT/_rejected/; the mapping, outcomes and custom measurements go to OUT/_extract/.
    A failed import leaves OUT as it was."""
    from chronorisk.data.contracts import ContractError
    from chronorisk.data.extract import import_extract as run_import
    from chronorisk.data.mapping import load_mapping, with_source

    settings = load_settings()
    try:
        loaded = load_mapping(mapping)
        if source is not None:
            loaded = with_source(loaded, source)
        report = run_import(loaded, mapping, out, pepper=settings.id_pepper.get_secret_value().encode(),
                            strict=strict)
    except (ValueError, KeyError, FileNotFoundError, FileExistsError, ContractError) as err:
        console.print(f"[red]import failed:[/red] {err}")
        raise typer.Exit(code=1) from err
    table = Table(title=f"{report.kind} extract ({report.rows_read:,} rows) -> {out}")
    for col in ("table", "read", "accepted", "rejected", "member_rejected", "rules broken"):
        table.add_column(col, justify="left" if col in ("table", "rules broken") else "right")
    for name, t in report.validation.tables.items():
        if t.read:
            table.add_row(name, f"{t.read:,}", f"{t.accepted:,}", f"{t.rejected:,}", f"{t.member_rejected:,}",
                          ", ".join(f"{k} {v:,}" for k, v in t.by_rule.items()) or "-")
    if report.custom and report.custom["read"]:
        c = report.custom
        table.add_row("custom measurements", f"{c['read']:,}", f"{c['accepted']:,}", f"{c['rejected']:,}", "", "")
    console.print(table)
    print_rule_messages(report.validation)
    if report.duplicates:
        console.print(f"[yellow]warning:[/yellow] {report.duplicates:,} rows repeat an earlier row's content under "
                      f"another id (kept; source rows in {out}/_extract/duplicates.parquet; --strict refuses them)")
    if report.outcomes or report.no_outcome:
        console.print(f"outcomes: {report.outcomes:,} applicants ({report.positives:,} positive); "
                      f"{report.no_outcome:,} without an outcome or application date")


@data_app.command("example-extract")
def data_example_extract(
    data: Annotated[Path, typer.Option(help="synthetic raw folder to take members from")],
    out: Annotated[Path, typer.Option(help="flat CSV to write (the example insurer's format)")],
    product: Annotated[str, typer.Option(help="product whose event defines the outcome column")] = "diabetes",
    year: Annotated[int, typer.Option(help="applications dated at the end of each quarter of this year")] = 2020,
) -> None:
    """Write a flat extract in foreign names, units and codes from a synthetic cohort (the own-data example)."""
    from chronorisk.data.contracts import load_raw
    from chronorisk.model.product import load_product
    from chronorisk.synthetic.extract import member_snapshots, write_flat

    settings = load_settings()
    raw, _ = load_raw(data, pepper=settings.id_pepper.get_secret_value().encode())
    tables = {name: getattr(raw, name) for name in ("members", "applications", "consultations", "lab_results",
                                                    "wearable_daily")}
    dates = [date(year, 3, 31), date(year, 6, 30), date(year, 9, 30), date(year, 12, 31)]
    snap = member_snapshots(tables, load_product(product), dates)
    write_flat(snap, out)
    console.print(f"{len(snap):,} applicants ({int(snap['label'].sum()):,} with the outcome) -> {out}")


@app.command("byod-example")
def byod_example(
    members: Annotated[int, typer.Option(help="members in the synthetic cohort the example extract is cut from")
                       ] = 4_000,
    seed: Annotated[int, typer.Option(help="random seed")] = 7,
    mapping: Annotated[Path, typer.Option(help="the example mapping")] = Path("experiments/mappings/example_flat.yaml"),
    product: Annotated[str, typer.Option(help="the product learning from the extract's outcome column")
                       ] = "byod_diabetes",
) -> None:
    """Own data end to end: an insurer-style flat extract, import, features, k-fold training, gate, one request."""
    from chronorisk.data.mapping import load_mapping

    settings = load_settings()
    _say_environment(settings)
    root = Path("data/byod")
    source = load_mapping(mapping).source.path
    console.rule("1. a flat extract in the insurer's names, units and codes (cut from a synthetic cohort)")
    data_synth(members=members, seed=seed, out=root / "synth", profile=None, workers=2, file_format="parquet")
    data_example_extract(data=root / "synth", out=source, product="diabetes", year=2020)
    console.rule(f"2. chronorisk import --mapping {mapping} --out {root / 'raw'}")
    import_extract(mapping=mapping, out=root / "raw")
    console.rule("3. the snapshot: features as of the day after each application, the extract's outcome")
    features_build(product=product, index_date=None, history_days=None, data=root / "raw", out=None,
                   chunk_members=20_000, runner="chunked", workers=2)
    console.rule("4. training (repeated k-fold below the product's small_data.max_rows)")
    train(product=product, snapshot=None, seed=seed, tune=0)
    console.rule("5. promotion gate")
    try:
        promote(product=product, to=None)
    except typer.Exit:
        console.print("[yellow]the gate refused the challenger (reasons above). The example sets it champion by "
                      "hand (`promote --to challenger`, logged like any rollback) only so the flow can reach the "
                      "server; with an insurer's data, read the reasons instead.[/yellow]")
        promote(product=product, to="challenger")
    console.rule("6. chronorisk report: SHAP portfolio insights over the imported applicants")
    report(product=product, out=Path("reports") / product, data=None,
           portfolio=load_settings().features_dir / f"{product}.parquet", index_date=None, version="champion",
           log_to_mlflow=True)
    console.rule("7. the BentoML service: one real request for an imported applicant")
    from serving.demo import imported_request, serve_and_score

    answer = serve_and_score(settings, product, imported_request(settings, root / "raw", product), log=console.print)
    console.print_json(json.dumps(answer))


@app.command("bench")
def bench(
    name: Annotated[list[str] | None, typer.Option("--name", help="bench to run (repeatable); default: all")] = None,
) -> None:
    """Run benchmarks; each writes bench/results/<name>.json (a missed target is recorded, exit 0)."""
    from chronorisk.bench.suite import BENCHES

    chosen = name or list(BENCHES)
    unknown = sorted(set(chosen) - set(BENCHES))
    if unknown:
        console.print(f"[red]unknown bench {unknown}; known: {sorted(BENCHES)}[/red]")
        raise typer.Exit(code=2)
    for bench_name in chosen:
        path = BENCHES[bench_name](console.print)
        result = json.loads(path.read_text())
        console.print(f"{bench_name}: {'pass' if result['pass'] else '[red]target missed[/red]'} -> {path}")


audit_app = typer.Typer(help="The audit trail: list records, verify the hash chain.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
keys_app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@audit_app.command("verify")
def audit_verify(
    url: Annotated[str | None, typer.Option(help="audit database URL (default: settings audit_url)")] = None,
    checkpoints: Annotated[Path | None, typer.Option(help="signed checkpoint file (default: settings, or beside "
                                                          "a SQLite database)")] = None,
    public_key: Annotated[Path | None, typer.Option(help="Ed25519 public key PEM to check checkpoints with "
                                                         "(default: derived from the signing key in secrets_dir)")
                          ] = None,
) -> None:
    """Re-walk the keyed chain and check every signed checkpoint: exit 0 if intact, 1 naming the first bad
    record (edited, deleted, reordered, re-chained, truncated), 2 if it cannot be read."""
    from serving.audit import AuditLog, AuditUnavailable
    from serving.audit_seal import AuditKeyError, AuditKeys, load_audit_keys

    settings = load_settings()
    target = url or settings.audit_url
    try:
        env_key = settings.audit_key.get_secret_value().encode() if settings.audit_key is not None else None
        loaded = load_audit_keys(settings.secrets_dir, env_key, public_key)
        keys = AuditKeys(loaded.hmac_key, loaded.public_key)  # verifying only: nothing is signed here
        with AuditLog(target, keys, checkpoints or settings.audit_checkpoints) as log:
            result = log.verify()
    except (AuditUnavailable, AuditKeyError) as err:
        console.print(f"[red]unavailable: the audit log could not be checked: {err}[/red]")
        raise typer.Exit(code=2) from err
    if result.ok:
        unsigned = result.checked - (result.covered_seq or 0)
        console.print(f"ok: {result.checked:,} records, keyed chain intact, {result.checkpoints:,} signed "
                      f"checkpoints match (the latest vouches for {result.covered_seq or 0:,} records; "
                      f"{unsigned:,} since); head {result.head_hash or '-'}")
        return
    where = f"seq {result.first_bad_seq}" if result.first_bad_seq is not None else "the checkpoints"
    console.print(f"[red]TAMPERED: first bad record is {where}: {result.reason} "
                  f"({result.checked:,} records read)[/red]")
    raise typer.Exit(code=1)


@audit_app.command("init-keys")
def audit_init_keys(
    folder: Annotated[Path | None, typer.Option(help="where to write them (default: settings secrets_dir)")] = None,
) -> None:
    """Create the audit chain's HMAC key and the checkpoints' Ed25519 signing key (0600 files in a 0700 folder).
    Keep copies apart from the audit database: whoever holds both can rewrite the log."""
    from serving.audit_seal import AuditKeyError, create_audit_keys

    target = folder or load_settings().secrets_dir
    try:
        create_audit_keys(target)
    except AuditKeyError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(code=1) from err
    console.print(f"audit keys written to {target}/ (audit_hmac.key, audit_signing.pem, audit_signing.pub.pem)")


@audit_app.command("list")
def audit_list(
    limit: Annotated[int, typer.Option(help="how many records, the newest first")] = 20,
    since: Annotated[str | None, typer.Option(help="only records at or after this UTC time (ISO 8601 prefix)")
                     ] = None,
    product: Annotated[str | None, typer.Option(help="only this product")] = None,
    url: Annotated[str | None, typer.Option(help="audit database URL (default: settings audit_url)")] = None,
) -> None:
    """List recent audit records: request id, time, product, status and decision (never features)."""
    from serving.audit import AuditLog, AuditUnavailable

    table = Table(title="audit records (newest first)")
    for col in ("seq", "request id", "time", "product", "status", "decision"):
        table.add_column(col, justify="right" if col in ("seq", "status") else "left", no_wrap=True)
    try:
        with AuditLog(url or load_settings().audit_url) as log:
            for r in log.records(since=since, product=product, limit=limit, newest_first=True):
                table.add_row(str(r.seq), r.request_id, r.time, r.product or "-", str(r.status_code),
                              r.decision or "-")
    except AuditUnavailable as err:
        console.print(f"[red]unavailable: {err}[/red]")
        raise typer.Exit(code=2) from err
    console.print(table)


@audit_app.command("show")
def audit_show(
    request_id: Annotated[str, typer.Argument(help="the request id the client quoted")],
    input_file: Annotated[Path | None, typer.Option("--input", help="the original request body (JSON): re-score it "
                                                                   "with the logged model version and compare")] = None,
    url: Annotated[str | None, typer.Option(help="audit database URL (default: settings audit_url)")] = None,
) -> None:
    """Show one audit record; with --input, reproduce the score and say whether it matches bit for bit."""
    import hashlib

    from serving.audit import AuditLog
    from serving.batch import load_served
    from serving.schemas import Applicant
    from serving.scoring import score_applicant

    settings = load_settings()
    with AuditLog(url or settings.audit_url) as log:
        record = log.get(request_id)
    if record is None:
        console.print(f"[red]no audit record for request {request_id}[/red]")
        raise typer.Exit(code=1)
    shown = {k: v for k, v in record.__dict__.items() if k != "features"}
    console.print_json(json.dumps(shown, default=str))
    if input_file is None:
        return
    body = input_file.read_bytes()
    same_input = record.input_sha256 is None or hashlib.sha256(body).hexdigest() == record.input_sha256
    if not (record.product and record.model_version and record.score is not None):
        console.print("[yellow]this record holds no score to reproduce (a refusal)[/yellow]")
        raise typer.Exit(code=1)
    served = load_served(settings, record.product, record.model_version)
    applicant = Applicant.model_validate(json.loads(body)["applicant"])
    day = date.fromisoformat(record.time[:10])
    again = score_applicant(served, applicant, request_id, day, settings.id_pepper.get_secret_value().encode())
    matches = again.result.probability == record.score and again.result.decision == record.decision
    console.print(f"input hash {'matches' if same_input else 'DIFFERS from'} the logged one; re-scored with "
                  f"{served.model_name} v{served.version}: {again.result.probability!r} vs logged {record.score!r}: "
                  f"{'MATCH (bit for bit)' if matches else 'MISMATCH'}")
    if not (matches and same_input):
        raise typer.Exit(code=1)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="who or what uses the key (an insurer's system, a team)")],
    products: Annotated[str, typer.Option(help="comma-separated products the key may score, e.g. "
                                               "diabetes,hypertension")],
) -> None:
    """Create an API key and print it once; only its hash and allowed products are stored."""
    from serving.keys import KeyStore

    store = KeyStore(load_settings().keys_file)
    try:
        plaintext, key = store.create(name, products.split(","))
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    console.print(f"created key {key.key_id} ({key.name}) for {', '.join(key.products)} in {store.path}")
    console.print("the key is shown this once; store it now, it cannot be recovered:")
    typer.echo(plaintext)  # plain echo: no markup, no wrapping of the one copy of the key


@keys_app.command("list")
def keys_list() -> None:
    """List keys: id, name, products, created, revoked (never the key or its hash)."""
    from serving.keys import KeyStore

    store = KeyStore(load_settings().keys_file)
    table = Table(title=f"API keys in {store.path}")
    for col in ("id", "name", "products", "created", "revoked"):
        table.add_column(col)
    for key in store.list():
        table.add_row(key.key_id, key.name, ",".join(key.products), key.created, "yes" if key.revoked else "no")
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="the key's id (8 hex characters, as `keys list` shows)")],
) -> None:
    """Revoke a key; a running service refuses it from its next request on."""
    from serving.keys import KeyStore

    store = KeyStore(load_settings().keys_file)
    try:
        key = store.revoke(key_id)
    except KeyError as err:
        console.print(f"[red]no API key with id {key_id!r}[/red]")
        raise typer.Exit(code=1) from err
    console.print(f"revoked {key.key_id} ({key.name})")


@app.command("serve")
def serve(
    port: Annotated[int, typer.Option(help="port to listen on (127.0.0.1 only)")] = 3000,
    workers: Annotated[int, typer.Option(help="BentoML worker processes")] = 1,
) -> None:
    """Start the BentoML scoring service with the champion of every served product."""
    import os
    import subprocess

    env = {**os.environ, "CHRONORISK_WORKERS": str(workers)}
    cmd = [sys.executable, "-m", "bentoml", "serve", "serving.service:ChronoriskService", "--host", "127.0.0.1",
           "--port", str(port)]
    raise typer.Exit(code=subprocess.call(cmd, env=env))


@app.command("score")
def score(
    product: Annotated[str, typer.Option(help="product name")],
    out: Annotated[Path, typer.Option(help="output: JSON lines for --input, parquet for --data")],
    input_file: Annotated[Path | None, typer.Option("--input", help="applicants as JSON lines (or a JSON array), "
                                                                   "each an /score body or an Applicant")] = None,
    data: Annotated[Path | None, typer.Option(help="raw data folder: score every member enrolled on --index-date")
                    ] = None,
    index_date: Annotated[str | None, typer.Option(help="with --data: the index date (YYYY-MM-DD)")] = None,
    version: Annotated[str, typer.Option(help="model alias or version number")] = "champion",
    today: Annotated[str | None, typer.Option(help="with --input: the date records may not be after "
                                                   "(default: today)")] = None,
) -> None:
    """Offline batch runner of the very function the service calls."""
    from serving.batch import score_folder, score_requests

    settings = load_settings()
    if (input_file is None) == (data is None):
        raise typer.BadParameter("give exactly one of --input or --data")
    if input_file is not None:
        counts = score_requests(settings, product, version, input_file, out,
                                date.fromisoformat(today) if today else None)
    else:
        if index_date is None:
            raise typer.BadParameter("--data needs --index-date")
        counts = score_folder(settings, product, version, Path(str(data)), date.fromisoformat(index_date), out)
        _warn_class_mix(product, out)
        if counts.get("refused"):
            from serving.batch import refused_path

            console.print(f"[yellow]{counts['refused']:,} members refused[/yellow]: their records break a contract "
                          f"rule (as the service refuses them); references and rules in {refused_path(out)}")
    console.print(f"scored -> {out}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))


def _warn_class_mix(product: str, scored: Path) -> None:
    """Say so when most of a scored book falls in one risk class (classes built for another base rate)."""
    import pandas as pd

    from chronorisk.model.product import load_product

    frame = pd.read_parquet(scored, columns=["probability"])
    note = load_product(product).class_mix_warning(frame["probability"].to_numpy(dtype=float))
    if note is not None:
        console.print(f"[yellow]warning:[/yellow] {note}")


@app.command("monitor")
def monitor(
    product: Annotated[str, typer.Option(help="product name")],
    batch: Annotated[Path | None, typer.Option(help="scored batch parquet from `chronorisk score --data`")] = None,
    since: Annotated[str | None, typer.Option(help="audit records from this date (YYYY-MM-DD); default: all")
                     ] = None,
    version: Annotated[str | None, typer.Option(help="model version or alias (default: the batch's, else "
                                                     "champion)")] = None,
    config: Annotated[Path, typer.Option(help="thresholds YAML (watch, act, min_rows)")] = Path(
        "experiments/monitoring.yaml"),
    html_out: Annotated[Path | None, typer.Option("--html", help="report (default reports/monitor_<product>.html)")
                        ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="summary (default reports/monitor_<product>.json)")
                        ] = None,
) -> None:
    """Drift of the scored population against the model's reference: exit 0 ok, 1 watch, 2 act, 3 no verdict."""
    from monitoring.drift import load_monitor_config
    from monitoring.monitor import run_monitor
    from monitoring.report import write_html, write_json

    if batch is not None and since is not None:
        raise typer.BadParameter("give --batch or --since, not both")
    settings = load_settings()
    try:
        result = run_monitor(settings, product, load_monitor_config(config), batch=batch,
                             since=date.fromisoformat(since) if since else None, version=version)
    except (ValueError, KeyError, LookupError, FileNotFoundError) as err:  # no verdict: not "ok", not drift
        console.print(f"[red]monitor cannot judge:[/red] {err}")
        raise typer.Exit(code=3) from err
    html_path = html_out or Path(f"reports/monitor_{product}.html")
    json_path = json_out or Path(f"reports/monitor_{product}.json")
    write_html(result, html_path)
    write_json(result, json_path)
    table = Table(title=f"{product} v{result.model_version}: {result.rows:,} rows ({result.source})")
    for col in ("quantity", "PSI", "level", "missing ref -> now", "out of range"):
        table.add_column(col, justify="left" if col in ("quantity", "level") else "right")
    for d in sorted(result.items, key=lambda d: -d.psi)[:15]:
        table.add_row(d.name, f"{d.psi:.4f}", d.level, f"{d.missing_reference:.1%} -> {d.missing_current:.1%}",
                      f"{d.out_of_range:.1%}")
    console.print(table)
    for note in result.notes:
        console.print(f"[yellow]{note}[/yellow]")
    colour = {"ok": "green", "watch": "yellow", "act": "red"}[result.level]
    console.print(f"[{colour}]{result.level.upper()}[/{colour}]: {len(result.flagged('watch'))} at watch or above "
                  f"({', '.join(result.flagged('watch')[:10]) or 'none'}); report {html_path}, summary {json_path}")
    raise typer.Exit(code=result.exit_code)


@app.command("model-card")
def model_card(
    product: Annotated[str, typer.Option(help="product name")],
    version: Annotated[str, typer.Option(help="model version or alias")] = "champion",
    out: Annotated[Path, typer.Option(help="folder for model_card.md and model_card.html")] = Path("reports"),
) -> None:
    """Write the logged (hash-checked) model card of a registered version as Markdown and HTML."""
    from chronorisk.model.card import CARD_FILES, fetch_model_card
    from chronorisk.model.registry import connect

    settings = load_settings()
    client = connect(settings.mlflow_tracking_uri)
    out.mkdir(parents=True, exist_ok=True)
    for fmt, name in CARD_FILES.items():
        path = out / f"{product}_{name}"
        path.write_text(fetch_model_card(client, product, version, fmt))
        console.print(f"wrote {path}")
@app.command("report")
def report(
    product: Annotated[str, typer.Option(help="product name")],
    out: Annotated[Path, typer.Option(help="output folder: report.html and shap_values.parquet")],
    data: Annotated[Path | None, typer.Option(help="raw data folder: the portfolio is every member enrolled on "
                                                   "--index-date; with --portfolio, the raw records of the what-ifs")
                    ] = None,
    portfolio: Annotated[Path | None, typer.Option(help="features parquet from `features build` or `score --data` "
                                                        "as the portfolio")] = None,
    index_date: Annotated[str | None, typer.Option(help="with --data alone: the portfolio's date (YYYY-MM-DD; "
                                                        "default: the day after the extract date)")] = None,
    version: Annotated[str, typer.Option(help="model alias or version number")] = "champion",
    log_to_mlflow: Annotated[bool, typer.Option(help="log report.html to the model version's MLflow run")] = True,
) -> None:
    """SHAP portfolio insights for product designers: one self-contained HTML report plus SHAP values as parquet."""
    from chronorisk.insights.report import run_report

    if data is None and portfolio is None:
        raise typer.BadParameter("give --data DIR or --portfolio FILE")
    settings = load_settings()
    try:
        result = run_report(settings.mlflow_tracking_uri, product, out, pepper=settings.id_pepper.get_secret_value()
                            .encode(), data_dir=data, portfolio_file=portfolio,
                            index_date=date.fromisoformat(index_date) if index_date else None, version=version,
                            log_to_mlflow=log_to_mlflow)
    except (LookupError, ValueError) as err:
        console.print(f"[red]report failed: {err}[/red]")
        raise typer.Exit(code=1) from err
    console.print(f"{result.members:,} members; SHAP {result.timings_s['shap']:.1f} s "
                  f"({result.shap_rows_per_s:,.0f} rows/s); additivity gap at most {result.additivity_max_gap:.1e}")
    for s in result.scenarios:
        console.print(f"what-if {s.name}: {s.changed_class:,} members change risk class "
                      f"({s.moved_down:,} down, {s.moved_up:,} up); expected claims {s.expected_claims_before:,.1f} "
                      f"-> {s.expected_claims_after:,.1f} ({s.expected_claims_change:+,.1f})")
    for note in result.notes:
        console.print(f"[yellow]{note}[/yellow]")
    console.print(f"report -> {result.html}; SHAP values -> {result.shap_parquet}"
                  + (f"; logged to MLflow run {result.logged_to_run}" if result.logged_to_run else ""))


if __name__ == "__main__":
    app()

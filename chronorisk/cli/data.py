"""Raw data in and checked: the `data` commands and the top-level `import` of an insurer's extract.

All of them end in the same contract rules, so the words for a broken rule are printed here, once.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from chronorisk.cli.console import console
from chronorisk.cli.defaults import MEMBERS, SEED, WORKERS
from chronorisk.settings import load_settings

if TYPE_CHECKING:
    from chronorisk.data.rejections import ValidationReport

data_app = typer.Typer(help="Raw data: generate a synthetic cohort, validate a raw folder.", no_args_is_help=True)


@data_app.command("synth")
def data_synth(
    members: Annotated[int, typer.Option(help="number of members to generate")] = MEMBERS,
    seed: Annotated[int, typer.Option(help="random seed; the same seed gives the same bytes")] = SEED,
    out: Annotated[Path | None, typer.Option(help="output folder (default: settings data_dir)")] = None,
    profile: Annotated[Path | None, typer.Option(help="population profile YAML")] = None,
    workers: Annotated[int, typer.Option(help="processes generating blocks in parallel")] = WORKERS,
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
    tables = raw.frames()
    dates = [date(year, 3, 31), date(year, 6, 30), date(year, 9, 30), date(year, 12, 31)]
    snap = member_snapshots(tables, load_product(product), dates)
    write_flat(snap, out)
    console.print(f"{len(snap):,} applicants ({int(snap['label'].sum()):,} with the outcome) -> {out}")

"""The `features` commands: point-in-time snapshots for training and features at one date for scoring."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from chronorisk.cli.console import console
from chronorisk.cli.defaults import CHUNK_MEMBERS, WORKERS
from chronorisk.settings import load_settings

features_app = typer.Typer(help="Point-in-time features: build a product's training snapshot.", no_args_is_help=True)


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
    chunk_members: Annotated[int, typer.Option(help="members per chunk; bounds memory")] = CHUNK_MEMBERS,
    runner: Annotated[str, typer.Option(help="chunked (in-process) or dask (local cluster)")] = "chunked",
    workers: Annotated[int, typer.Option(help="Dask workers (runner dask)")] = WORKERS,
) -> None:
    """Build a product's training snapshot (index dates, labels, features), or features at one date."""
    from chronorisk.data.contracts import extract_date_of
    from chronorisk.model.product import load_product
    from features.runners import build_features_at
    from training.build import RUNNERS, build_training_snapshot

    if (product is None) == (index_date is None):
        raise typer.BadParameter("give exactly one of --product or --index-date")
    if runner not in RUNNERS:
        raise typer.BadParameter(f"runner must be chunked or dask, got {runner!r}")
    settings = load_settings()
    data_dir = data or settings.data_dir
    pepper = settings.id_pepper.get_secret_value().encode()
    if index_date is not None:
        target = out or settings.features_dir / f"features-{index_date}.parquet"
        totals = build_features_at(data_dir, date.fromisoformat(index_date), target,
                                   extract_date=extract_date_of(data_dir), pepper=pepper, history_days=history_days,
                                   chunk_members=chunk_members)
        title = f"features at {index_date} -> {target}"
    else:
        spec = load_product(str(product))
        target = out or settings.features_dir / f"{spec.name}.parquet"
        try:
            totals = build_training_snapshot(data_dir, spec, target, pepper=pepper, chunk_members=chunk_members,
                                             runner=runner, workers=workers,
                                             warn=lambda note: console.print(f"[yellow]warning:[/yellow] {note}"))
        except (ValueError, FileNotFoundError) as err:
            console.print(f"[red]features build failed:[/red] {err}")
            raise typer.Exit(code=1) from err
        if spec.outcome == "extract":  # an extract's counts are the import's, not the contracts' per table
            console.print(f"{spec.name} snapshot -> {target}: " + ", ".join(f"{k} {v:,}" for k, v in
                                                                            totals.counts.items()))
            return
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

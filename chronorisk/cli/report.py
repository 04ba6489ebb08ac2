"""The `report` command: portfolio insights are for product designers, not for scoring, so they sit apart."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from chronorisk.cli.console import console
from chronorisk.settings import load_settings


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

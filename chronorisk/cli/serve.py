"""Scoring after promotion: the service, the offline batch runner of the same function, and drift of
what was scored against the model's reference."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from chronorisk.cli.console import console
from chronorisk.settings import NO_VERSION, load_settings


def serve(
    port: Annotated[int, typer.Option(help="port to listen on (127.0.0.1 only)")] = 3000,
    workers: Annotated[int, typer.Option(help="BentoML worker processes")] = 1,
) -> None:
    """Start the BentoML scoring service with the champion of every served product."""
    import os
    import subprocess

    from chronorisk.model.registry import CHAMPION, connect, resolve
    from serving.process import launch_env

    settings = load_settings()
    # Resolved once, here: each worker resolving the alias itself could load another version if a promotion
    # fell between their starts (or a restarted worker came up after one).
    client = connect(settings.mlflow_tracking_uri)
    versions = dict(settings.serve_versions)
    for product in settings.serve_products:
        if product in versions:
            continue
        try:
            versions[product] = str(resolve(client, product, CHAMPION).version)
        except Exception as err:  # the server starts anyway and says why it is not ready (/readyz, /products)
            typer.echo(f"{product}: no champion version could be resolved ({type(err).__name__}); "
                       "the service will not be ready for it", err=True)
            versions[product] = NO_VERSION  # every worker agrees: not ready, whatever is promoted meanwhile
    typer.echo("serving " + ", ".join(f"{p} v{v}" for p, v in versions.items()) + f" with {workers} worker(s)")
    env = launch_env({**os.environ, "CHRONORISK_WORKERS": str(workers),
                      "CHRONORISK_SERVE_VERSIONS": ",".join(f"{p}={v}" for p, v in versions.items())})
    cmd = [sys.executable, "-m", "bentoml", "serve", "serving.service:ChronoriskService", "--host", "127.0.0.1",
           "--port", str(port)]
    raise typer.Exit(code=subprocess.call(cmd, env=env))


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

"""Commands that run other commands in sequence: each stage is the very function its own command calls,
so a pipeline cannot drift from what the stages do one at a time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from chronorisk.cli.console import console, say_environment
from chronorisk.cli.data import data_calibrate, data_example_extract, data_synth, data_validate, import_extract
from chronorisk.cli.defaults import CHUNK_MEMBERS, MEMBERS, SEED, WORKERS
from chronorisk.cli.features import features_build
from chronorisk.cli.models import promote, train
from chronorisk.cli.report import report
from chronorisk.settings import load_settings


def retrain(
    product: Annotated[str, typer.Option(help="product name or YAML path")],
    data: Annotated[Path | None, typer.Option(help="raw data folder (default: settings data_dir)")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = SEED,
    tune: Annotated[int, typer.Option("--tune", help="Optuna trials (0: defaults)")] = 0,
) -> None:
    """Data check, features, train, evaluate and promote, in one command."""
    settings = load_settings()
    data_dir = data or settings.data_dir
    console.rule("1. data check")
    data_validate(data_dir=data_dir, strict=False, extract_date=None, json_out=None)
    console.rule("2. features")
    features_build(product=product, index_date=None, history_days=None, data=data_dir, out=None,
                   chunk_members=CHUNK_MEMBERS, runner="chunked", workers=WORKERS)
    console.rule("3. train and evaluate")
    train(product=product, snapshot=None, seed=seed, tune=tune)
    console.rule("4. promotion gate")
    promote(product=product, to=None)


def demo(
    members: Annotated[int, typer.Option(help="members in the demo cohort")] = MEMBERS,
    seed: Annotated[int, typer.Option(help="random seed")] = SEED,
    out: Annotated[Path | None, typer.Option(help="raw data folder (default: settings data_dir)")] = None,
) -> None:
    """End to end on embedded defaults: generate, validate, calibrate, features, train, promote, serve one request."""
    settings = load_settings()
    say_environment(settings)
    data_dir = out or settings.data_dir
    console.rule("1. synthetic cohort")
    data_synth(members=members, seed=seed, out=data_dir, profile=None, workers=WORKERS, file_format="parquet")
    console.rule("2. raw-data contracts")
    data_validate(data_dir=data_dir, strict=False, extract_date=None, json_out=None)
    console.rule("3. calibration against the epidemiology targets")
    try:
        data_calibrate(data_dir=data_dir)
    except typer.Exit:
        console.print("[yellow]some calibration checks are out of range at this cohort size[/yellow]")
    console.rule("4. point-in-time features: the diabetes training snapshot")
    features_build(product="diabetes", index_date=None, history_days=None, data=data_dir, out=None,
                   chunk_members=CHUNK_MEMBERS, runner="chunked", workers=WORKERS)
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


def byod_example(
    members: Annotated[int, typer.Option(help="members in the synthetic cohort the example extract is cut from")
                       ] = 4_000,
    seed: Annotated[int, typer.Option(help="random seed")] = SEED,
    mapping: Annotated[Path, typer.Option(help="the example mapping")] = Path("experiments/mappings/example_flat.yaml"),
    product: Annotated[str, typer.Option(help="the product learning from the extract's outcome column")
                       ] = "byod_diabetes",
) -> None:
    """Own data end to end: an insurer-style flat extract, import, features, k-fold training, gate, one request."""
    from chronorisk.data.mapping import load_mapping

    settings = load_settings()
    say_environment(settings)
    root = Path("data/byod")
    source = load_mapping(mapping).source.path
    console.rule("1. a flat extract in the insurer's names, units and codes (cut from a synthetic cohort)")
    data_synth(members=members, seed=seed, out=root / "synth", profile=None, workers=WORKERS, file_format="parquet")
    data_example_extract(data=root / "synth", out=source, product="diabetes", year=2020)
    console.rule(f"2. chronorisk import --mapping {mapping} --out {root / 'raw'}")
    import_extract(mapping=mapping, out=root / "raw")
    console.rule("3. the snapshot: features as of the day after each application, the extract's outcome")
    features_build(product=product, index_date=None, history_days=None, data=root / "raw", out=None,
                   chunk_members=CHUNK_MEMBERS, runner="chunked", workers=WORKERS)
    console.rule("4. training (repeated k-fold below the product's small_data.max_rows)")
    train(product=product, snapshot=None, seed=seed, tune=0)
    console.rule("5. promotion gate")
    try:
        promote(product=product, to=None)
    except typer.Exit:
        console.print("[yellow]the gate refused the challenger (reasons above). The example sets it champion by "
                      "hand (`promote --to challenger`, logged like any rollback) only so the flow can reach the "
                      "server; with an insurer's data, read the reasons instead.[/yellow]")
        promote(product=product, to="challenger", reason="byod example: the flow must reach the server",
                by="byod-example")
    console.rule("6. chronorisk report: SHAP portfolio insights over the imported applicants")
    report(product=product, out=Path("reports") / product, data=None,
           portfolio=load_settings().features_dir / f"{product}.parquet", index_date=None, version="champion",
           log_to_mlflow=True)
    console.rule("7. the BentoML service: one real request for an imported applicant")
    from serving.demo import imported_request, serve_and_score

    answer = serve_and_score(settings, product, imported_request(settings, root / "raw", product), log=console.print)
    console.print_json(json.dumps(answer))

"""A model version's life in the registry: trained as challenger, promoted by the gate, described by its card."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from chronorisk.cli.console import console
from chronorisk.cli.defaults import SEED
from chronorisk.settings import load_settings


def train(
    product: Annotated[str, typer.Option(help="product name or YAML path")],
    snapshot: Annotated[Path | None, typer.Option(help="snapshot parquet (default: data/features/<product>.parquet)")
                        ] = None,
    seed: Annotated[int, typer.Option(help="random seed; same seed and data give bit-identical predictions")] = SEED,
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


def promote(
    product: Annotated[str, typer.Option(help="product name or YAML path")],
    to: Annotated[str | None, typer.Option("--to", help="roll the champion back (or forward) to this version")
                  ] = None,
    reason: Annotated[str | None, typer.Option(help="with --to: why (required; the promotion log, the version's "
                                                    "tags and its model card keep it)")] = None,
    by: Annotated[str | None, typer.Option(help="with --to: who decided (default: your login name)")] = None,
) -> None:
    """Run the gate: make the challenger champion only if it beats the champion on the same test data."""
    import getpass

    from chronorisk.model.product import load_product
    from chronorisk.model.registry import connect
    from training.gate import promote as run_gate

    if to is not None and not (reason and reason.strip()):
        console.print("[red]promote --to needs --reason: why the champion is set by hand[/red]")
        raise typer.Exit(code=2)
    settings = load_settings()
    spec = load_product(product)
    verdict = run_gate(connect(settings.mlflow_tracking_uri), spec.name, spec.gate, settings.promotion_log, to,
                       reason=reason, by=(by or getpass.getuser()) if to is not None else None)
    colour = "green" if verdict.promote else "red"
    console.print(f"[{colour}]{verdict.explain()}[/{colour}]")
    if not verdict.promote:
        raise typer.Exit(code=3)


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

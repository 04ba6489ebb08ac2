"""The `bench` command: a missed target is a result to record, not a failure, so it exits 0."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from chronorisk.cli.console import console


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

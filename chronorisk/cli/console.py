"""The one rich Console every command prints to, so a pipeline's stages share its width and stream.

Piped (Make, logs, tests) it is 150 columns wide rather than whatever the environment says, so tables wrap
the same way on every run.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from chronorisk.settings import Settings

console = Console(width=None if sys.stdout.isatty() else 150)


def say_environment(settings: Settings) -> None:
    """The demos run on embedded defaults only in development, chosen explicitly; they say so."""
    if settings.environment != "development":
        console.print(f"[red]the demo runs on embedded defaults (placeholder pepper, audit keys generated on first "
                      f"run); choose them with CHRONORISK_ENVIRONMENT=development (this is "
                      f"{settings.environment})[/red]")
        raise typer.Exit(code=2)
    pepper = "the placeholder pepper" if settings.id_pepper.get_secret_value() == "dev-pepper" else "your pepper"
    console.print(f"environment: development, chosen explicitly; member ids pseudonymised with {pepper}; "
                  f"audit keys in {settings.secrets_dir}/ (generated there, 0600, on first run)")

"""The `keys` commands: API keys are made and revoked offline, beside the service, never through it."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from chronorisk.cli.console import console
from chronorisk.settings import load_settings

keys_app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)


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

"""The `audit` commands: the trail is only worth something if it can be checked and a score reproduced
from it, by someone who does not trust the service that wrote it."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from chronorisk.cli.console import console
from chronorisk.settings import load_settings

audit_app = typer.Typer(help="The audit trail: list records, verify the hash chain.", no_args_is_help=True)


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

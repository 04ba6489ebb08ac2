"""The `chronorisk` command line: one Typer app with a sub-command per stage.

Every Make target calls this app; commands are thin wrappers that build settings, do the I/O
and hand frames to the product functions in `features`, `training` and `serving`. They live in modules
named for the stage they drive; this one assembles them. The root commands are registered here, in the
order `--help` lists them, rather than by decorators in their modules, so that order is written down in
one place instead of following from which module happens to be imported first.
"""

from __future__ import annotations

import typer

from chronorisk.cli import audit, bench, data, features, keys, models, pipelines, report, serve

app = typer.Typer(help="chronorisk: chronic-disease risk scoring for single-disease insurance products.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)


@app.callback()
def main() -> None:
    """chronorisk: chronic-disease risk scoring for single-disease insurance products."""
    import os

    from serving.redaction import install_log_redaction

    # Everything this process writes (raw and scored data, quarantine files, mlflow.db, audit.db,
    # keys, reports) is health data or a secret: owner-only by default, whatever the caller's umask.
    os.umask(0o077)
    install_log_redaction()


app.command("train")(models.train)
app.command("promote")(models.promote)
app.command("retrain")(pipelines.retrain)
app.command("demo")(pipelines.demo)
app.command("import")(data.import_extract)
app.command("byod-example")(pipelines.byod_example)
app.command("bench")(bench.bench)
app.command("serve")(serve.serve)
app.command("score")(serve.score)
app.command("monitor")(serve.monitor)
app.command("model-card")(models.model_card)
app.command("report")(report.report)
app.add_typer(data.data_app, name="data")
app.add_typer(features.features_app, name="features")
app.add_typer(audit.audit_app, name="audit")
app.add_typer(keys.keys_app, name="keys")

__all__ = ["app", "main"]

if __name__ == "__main__":
    app()

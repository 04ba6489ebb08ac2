"""`python -m chronorisk.cli`: the same app as the `chronorisk` command."""

from chronorisk.cli import app

app()

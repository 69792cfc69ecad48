"""The `synthscan` command: one sub-command per module in this folder."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="synthscan",
    help="Detect AI-generated images and explain why.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)



@app.callback()
def main() -> None:
    """Detect AI-generated images and explain why."""


# Each module adds its command(s) to `app` when imported.
from synthscan.cli import calibrate, clip_thresholds, evaluate, explain, export, fingerprints, fit, history, models, provenance, report, scan, serve, train  # noqa: E402,F401

if __name__ == "__main__":  # pragma: no cover
    app()

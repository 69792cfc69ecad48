"""`synthscan clip-thresholds`: fit the per-artifact thresholds of CLIP zero-shot scoring."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from synthscan.cli.main import app
from synthscan.result import ExitCode


@app.command("clip-thresholds", rich_help_panel="Calibration")
def clip_thresholds(
    labels: Path = typer.Argument(..., help="CSV with columns path and artifacts (semantic taxonomy ids, ';'-separated)."),
    out: Path = typer.Option(..., "--out", "-o", help="Thresholds JSON to write (for --clip-thresholds)."),
    clip: str = typer.Option("openai/clip-vit-base-patch32", "--clip", help="CLIP/SigLIP hub id or local folder."),
) -> None:
    """Per-artifact thresholds that maximise F1 on labelled images, for `--clip-thresholds`."""
    from synthscan.explain.clip_zero_shot import LabelsError, calibrate_on_labels

    console, err = Console(), Console(stderr=True)
    try:
        with err.status("scoring images") as status:
            thresholds, failed = calibrate_on_labels(
                labels, clip, progress=lambda i, n: status.update(f"scoring images: {i}/{n}"))
    except (LabelsError, OSError) as exc:
        err.print(f"error: {escape(str(exc))}")
        raise typer.Exit(ExitCode.USAGE) from None
    for path, reason in failed:
        err.print(f"[yellow]skipped[/] {escape(path)}: {escape(reason)}")
    table = Table("artifact", "positives", "negatives", "threshold", "precision", "recall", "F1", box=None)
    for artifact_id, fit in thresholds.fit.items():
        table.add_row(artifact_id, str(int(fit["positives"])), str(int(fit["negatives"])),
                      f"{thresholds.per_artifact[artifact_id]:.3f}",
                      *(f"{fit[k]:.2f}" for k in ("precision", "recall", "f1")))
    console.print(table)
    console.print(f"{len(thresholds.per_artifact)} artifact(s) calibrated (in-sample figures); the others keep "
                  f"{thresholds.default}. Wrote {escape(str(thresholds.save(out)))}")
    raise typer.Exit(ExitCode.SOME_FAILED if failed else ExitCode.OK)

"""`synthscan fingerprints`: mean residual spectra per generator and family, distances to real."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from synthscan.cli.main import app
from synthscan.result import ExitCode


@app.command("fingerprints")
def fingerprints(
    dataset: Path = typer.Argument(..., help="Folder (real/, fake/<generator>/) or manifest CSV (synthbench format)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the figures, distances.csv and summary.json."),
    split: str = typer.Option(None, help="Manifest split (e.g. train)."),
    track: str = typer.Option(None, help="Manifest track (e.g. 256)."),
    family_spectra: Path = typer.Option(None, help="Also write the per-family mean profiles (.npz) here."),
) -> None:
    """Mean residual spectrum ("fingerprint") per generator and family, and each image's distance to the real mean."""
    import shutil

    from synthscan.data.datasets import DatasetError, read_dataset
    from synthscan.explain.fingerprints import compute_fingerprints

    err = Console(stderr=True)
    try:
        samples = read_dataset(dataset, split=split, track=track)
    except DatasetError as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(ExitCode.USAGE) from None
    with err.status(f"computing spectra of {len(samples)} images") as status:
        try:
            summary = compute_fingerprints(
                samples, out, progress=lambda i: status.update(f"computing spectra: {i}/{len(samples)}"))
        except ValueError as exc:
            err.print(f"error: {exc}")
            raise typer.Exit(ExitCode.USAGE) from None
    if family_spectra:
        family_spectra.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "family_spectra.npz", family_spectra)
    console = Console()
    console.print(f"{summary['n_images']} images ({summary['skipped']} unreadable skipped) -> {out}")
    for name, row in sorted(summary["generators"].items(), key=lambda kv: -kv[1]["mean_distance"]):
        console.print(f"  {name:32s} n={row['n']:5d}  mean distance to real {row['mean_distance']:.3f}")
    if summary["skipped"]:
        raise typer.Exit(ExitCode.SOME_FAILED)

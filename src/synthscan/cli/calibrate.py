"""`synthscan calibrate`: refit a model's calibration, threshold and uncertain band on labelled
images, measured on a held-out part of them."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from synthscan.cli.main import app
from synthscan.result import ExitCode


@app.command()
def calibrate(
    dataset: Path = typer.Argument(..., help="A synthbench manifest CSV or a dataset folder (as for `eval`)."),
    out: Path = typer.Option(..., "--out", help="Where to save the recalibrated model (NAME.json + .safetensors)."),
    model: str = typer.Option("synthscan-default", "--model", "-m", help="Bundled model name or path to a model .json."),
    split: str = typer.Option("val", help="Manifest split holding the calibration images."),
    track: str = typer.Option("256", help="Manifest track ('' for all)."),
    method: str = typer.Option("platt", help="platt, temperature or isotonic."),
    target_fpr: float = typer.Option(None, help="Threshold calling at most this fraction of real photos fake (e.g. 0.03)."),
    max_error: float = typer.Option(0.05, help="Error rate allowed outside the uncertain band."),
    holdout: float = typer.Option(0.5, help="Fraction of the images (by path hash) kept out of the fit to measure ECE and FPR."),
    reliability: Path = typer.Option(None, help="Write a reliability diagram (PNG) of the held-out images, before and after."),
) -> None:
    """Fit calibration + threshold + band on part of DATASET; report ECE and FPR on the rest."""
    from synthscan.data.datasets import DatasetError, read_dataset
    from synthscan.detectors.registry import load_model
    from synthscan.train.calibrate import recalibrate

    err = Console(stderr=True)
    if method not in ("platt", "temperature", "isotonic"):
        raise typer.BadParameter("--method must be platt, temperature or isotonic")
    if not 0 <= holdout < 1 or (target_fpr is not None and not 0 <= target_fpr < 1):
        raise typer.BadParameter("--holdout and --target-fpr must be in [0, 1)")
    try:
        samples = read_dataset(dataset, split=split or None, track=track or None)
        loaded = load_model(model)
        with err.status(f"scoring {len(samples)} images"):
            summary = recalibrate(loaded, samples, method=method, target_fpr=target_fpr, max_error=max_error,
                                  holdout=holdout, fitted_on=f"{dataset.name} {split or 'all'} (fit part)")
    except (DatasetError, FileNotFoundError, KeyError, ValueError) as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(ExitCode.USAGE) from None
    d = loaded.info.decision
    console = Console()
    console.print(f"{method} fitted on {summary['n_fit']} images; threshold {d.threshold:.4f}, "
                  f"uncertain band [{d.uncertain_low:.4f}, {d.uncertain_high:.4f}]")
    held = summary.get("held_out")
    if held:
        fpr = "—" if held["fpr"] is None else f"{held['fpr']:.3f}"
        bal = "—" if held["balanced_accuracy"] is None else f"{held['balanced_accuracy']:.3f}"
        console.print(f"held out ({summary['n_held_out']} images): ECE {held['ece_before']:.4f} -> "
                      f"{held['ece_after']:.4f}; real photos called fake {fpr}; balanced accuracy {bal}")
        if reliability:
            from synthscan.evaluate.calibration import plot_reliability

            y, p_old, p_new = summary["curves"]
            plot_reliability({"before": (y, p_old), f"after ({method})": (y, p_new)}, reliability,
                             title="Reliability, held-out images")
            err.print(f"wrote {reliability}")
    path = loaded.save(out)
    err.print(f"wrote {path}")

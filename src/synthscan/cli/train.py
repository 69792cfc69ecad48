"""`synthscan train`: train a detector on a dataset, calibrate it on validation, save it."""

from __future__ import annotations

from pathlib import Path

import typer

from synthscan.cli.main import app
from synthscan.data.augment import AugmentConfig
from synthscan.result import ExitCode
from synthscan.train.trainer import TrainConfig


@app.command()
def train(
    detector: str = typer.Option(..., "--detector", "-d", help="Detector name (see `synthscan models`)."),
    data: Path = typer.Option(..., "--data", help="Manifest CSV (synthbench format) or folder real/ + fake/<generator>/."),
    out: Path = typer.Option(..., "--out", help="Output folder: run/ (checkpoints, log) and NAME.json/.safetensors."),
    name: str = typer.Option(None, help="Model name (default: the detector name)."),
    version: str = typer.Option("0.1.0", help="Model version saved with the weights."),
    track: str = typer.Option("256", help="Manifest track to use ('' for all)."),
    exclude_family: list[str] = typer.Option([], help="Leave a generator family out of train and val."),
    epochs: int = typer.Option(12),
    batch_size: int = typer.Option(32),
    lr: float = typer.Option(1e-3),
    crop_size: int = typer.Option(256, help="Training crop size (inference always uses the detector's tiles)."),
    patience: int = typer.Option(4, help="Stop after this many epochs without a better val AP."),
    seed: int = typer.Option(0),
) -> None:
    """Train DETECTOR on DATA (train split), pick the best epoch and calibrate on the val split."""
    from synthscan.data.datasets import DatasetError
    from synthscan.train.recipe import train_detector

    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, patience=patience, seed=seed,
                      augment=AugmentConfig(crop_size=crop_size))
    try:
        train_detector(detector, data, out, name=name or detector, version=version, track=track or None,
                       exclude_families=tuple(exclude_family), train_config=cfg)
    except (DatasetError, KeyError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ExitCode.USAGE) from None

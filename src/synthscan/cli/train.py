"""`synthscan train`: train a detector on a dataset, calibrate it on validation, save it."""

from __future__ import annotations

from pathlib import Path

import typer

from synthscan.cli.main import app
from synthscan.result import ExitCode
from synthscan.train.config import ConfigError, resolve_config


@app.command()
def train(
    detector: str = typer.Option(..., "--detector", "-d", help="Detector name (see `synthscan models`)."),
    data: Path = typer.Option(..., "--data", help="A synthbench manifest CSV, or a folder in the real/+fake/<generator>/, CIFAKE, GenImage or ForenSynths layout (detected)."),
    out: Path = typer.Option(..., "--out", help="Output folder: run/ (checkpoints, log) and NAME.json/.safetensors."),
    name: str = typer.Option(None, help="Model name (default: the detector name)."),
    version: str = typer.Option("0.1.0", help="Model version saved with the weights."),
    track: str = typer.Option("256", help="Manifest track to use ('' for all)."),
    exclude_family: list[str] = typer.Option([], help="Leave a generator family out of train and val."),
    config: Path = typer.Option(None, "--config", help=r"TOML file with \[detector], \[train], \[augment] tables (see configs/)."),
    epochs: int = typer.Option(None, help="Default: from the detector's config."),
    batch_size: int = typer.Option(None),
    lr: float = typer.Option(None),
    crop_size: int = typer.Option(None, help="Training crop size (inference always uses the detector's tiles)."),
    patience: int = typer.Option(None, help="Stop after this many epochs without a better val AP."),
    seed: int = typer.Option(None),
    init: str = typer.Option(None, "--init", help="Start from this trained model's weights and detector settings "
                             "(a bundled name or a .json path), e.g. to fine-tune synthscan-npr adversarially."),
    adversarial: str = typer.Option(None, help="Adversarial training, e.g. pgd:eps=2/255,steps=5 (half of each batch attacked; fraction=F to change)."),
    calibration: str = typer.Option("platt", help="Calibration fitted on the val split: platt, temperature or isotonic."),
    target_fpr: float = typer.Option(None, help="Choose the threshold so that at most this fraction of val real photos is called fake (e.g. 0.03)."),
    engine: str = typer.Option("local", help="local, or ray: data-parallel training (DDP) with Ray Train."),
    num_workers: int = typer.Option(2, help="With --engine ray: training workers (one process each)."),
    storage_path: str = typer.Option(None, help="With --engine ray: where checkpoints go (default OUT/ray; a "
                                     "shared folder or s3://... on a cluster). Rerunning resumes from the last one."),
    ray_address: str = typer.Option(None, help="With --engine ray: auto, ray://HOST:10001 (default: local Ray)."),
    gpu: bool = typer.Option(False, "--gpu", help="With --engine ray: one GPU per worker."),
) -> None:
    """Train DETECTOR on DATA (train split), pick the best epoch and calibrate on the val split."""
    from synthscan.data.datasets import DatasetError
    from synthscan.train.recipe import train_detector

    if calibration not in ("platt", "temperature", "isotonic"):
        raise typer.BadParameter("--calibration must be platt, temperature or isotonic")
    if target_fpr is not None and not 0 <= target_fpr < 1:
        raise typer.BadParameter("--target-fpr must be in [0, 1)")
    if adversarial:
        from synthscan.detectors.registry import get_detector_class
        from synthscan.evaluate.adversarial import parse_attack

        try:
            parse_attack(adversarial)
            if get_detector_class(detector).fits_in_one_shot:
                raise ValueError(f"{detector} is not trained by gradient descent: --adversarial does not apply")
        except (ValueError, KeyError) as exc:
            raise typer.BadParameter(str(exc)) from None
    try:
        detector_config, cfg = resolve_config(detector, config, overrides={
            "train": {"epochs": epochs, "batch_size": batch_size, "lr": lr, "patience": patience, "seed": seed,
                      "adversarial": adversarial},
            "augment": {"crop_size": crop_size},
        })
    except (ConfigError, KeyError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ExitCode.USAGE) from None
    if engine == "ray":
        if init:
            typer.echo("error: --init is not supported with --engine ray yet; train locally to start from a model",
                       err=True)
            raise typer.Exit(ExitCode.USAGE)
        from synthscan.scale.cli import train_with_ray

        raise typer.Exit(train_with_ray(detector, data, out, ray_address=ray_address, num_workers=num_workers,
                                        storage_path=storage_path, use_gpu=gpu, name=name or detector, version=version,
                                        track=track or None, exclude_families=tuple(exclude_family),
                                        train_config=cfg, detector_config=detector_config))
    if engine != "local":
        raise typer.BadParameter("--engine must be local or ray")
    try:
        train_detector(detector, data, out, name=name or detector, version=version, track=track or None,
                       exclude_families=tuple(exclude_family), train_config=cfg,
                       detector_config=detector_config, init=init,
                       calibration={"method": calibration, "target_fpr": target_fpr})
    except (DatasetError, KeyError, OSError, ValueError) as exc:  # OSError: e.g. pretrained backbone weights not available
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ExitCode.USAGE) from None

"""`synthscan models`: the detectors this install knows and the trained models it ships."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from synthscan.cli.main import app


@app.command()
def models() -> None:
    """List registered detectors and bundled trained models."""
    from synthscan.detectors.registry import DEFAULT_MODEL, bundled_weights_dir, list_bundled_models, list_detectors

    console = Console()
    detectors = Table(title="Detectors")
    for col in ("name", "input", "description"):
        detectors.add_column(col)
    for name, cls in list_detectors().items():
        policy = cls.Config().input
        doc = (sys.modules[cls.__module__].__doc__ or "").strip().splitlines()[0]
        detectors.add_row(name, f"{policy.mode} {policy.crop_size}px", doc)
    console.print(detectors)

    weights = Table(title=f"Bundled models ({bundled_weights_dir()})")
    for col in ("model", "detector", "version", "threshold", "uncertain band", "MB", "use"):
        weights.add_column(col)
    for name, info in list_bundled_models().items():
        size = (bundled_weights_dir() / f"{name}.safetensors").stat().st_size / 1e6
        d = info.decision
        label = f"{name} (default)" if name == DEFAULT_MODEL else name
        weights.add_row(label, info.detector, info.version, f"{d.threshold:.3f}",
                        f"{d.uncertain_low:.3f}–{d.uncertain_high:.3f}", f"{size:.1f}", info.purpose)
    console.print(weights)

"""Perturbation sweeps: score a labelled dataset with one or more models, clean and under each
perturbation level, and measure how AP, AUC and the accuracies at the shipped threshold move.

Every image is decoded once; each perturbed copy is scored in memory (`Scanner.scan_images`),
so nothing is written to disk. Files that fail to load are counted and left out of every row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel

from synthscan.data.samples import Sample
from synthscan.evaluate.metrics import binary_metrics, per_group_metrics
from synthscan.evaluate.perturb import Perturbation, rng_for
from synthscan.io import ImageLoadError, LoadedImage, load_image

CLEAN = "clean"
METRICS = ("ap", "roc_auc", "balanced_accuracy", "real_accuracy", "fake_accuracy")


class SweepRow(BaseModel):
    model: str
    perturbation: str  # "clean", or the kind ("jpeg", "chain", ...)
    level: str  # "" for clean
    threshold: float
    metrics: dict[str, Any]  # binary_metrics at the model's threshold
    per_generator: dict[str, dict[str, Any]] | None = None


class SweepResult(BaseModel):
    dataset: str
    split: str
    seed: int
    n_images: int
    errors: int
    rows: list[SweepRow]

    def row(self, model: str, perturbation: str, level: str = "") -> SweepRow:
        return next(r for r in self.rows if (r.model, r.perturbation, r.level) == (model, perturbation, level))

    def models(self) -> list[str]:
        return list(dict.fromkeys(r.model for r in self.rows))


def _level(p: Perturbation) -> str:
    return p.label.partition(":")[2]


def perturbed_images(
    image: LoadedImage, perturbations: Sequence[Perturbation], seed: int
) -> list[LoadedImage]:
    """The clean image, then one copy per perturbation (same path, new pixels)."""
    out = [image]
    for p in perturbations:
        rgb = p(image.rgb, rng_for(seed, image.path, p))
        out.append(dataclasses.replace(image, rgb=rgb, warnings=list(image.warnings)))
    return out


def run_sweep(
    scanners: Sequence[Any],
    samples: Sequence[Sample],
    perturbations: Sequence[Perturbation],
    *,
    seed: int = 0,
    per_generator: bool = False,
    dataset: str = "",
    split: str = "",
    progress: Callable[[int], None] | None = None,
) -> SweepResult:
    """Rows for every model x (clean + each perturbation). `scanners` are `synthscan.Scanner`s;
    each is scored at its own decision threshold. `progress(k)` is called after each image."""
    n_cond = 1 + len(perturbations)
    scores = {i: [[] for _ in range(n_cond)] for i in range(len(scanners))}
    kept: list[Sample] = []
    errors = 0
    for sample in samples:
        try:
            image = load_image(sample.path)
        except ImageLoadError:
            errors += 1
        else:
            kept.append(sample)
            variants = perturbed_images(image, perturbations, seed)
            for i, scanner in enumerate(scanners):
                for c, result in enumerate(scanner.scan_images(variants)):
                    scores[i][c].append(result.p_fake)
        if progress:
            progress(1)

    y = np.array([s.y for s in kept])
    gens = [s.generator for s in kept]
    conds = [(CLEAN, "")] + [(p.kind, _level(p)) for p in perturbations]
    rows = []
    for i, scanner in enumerate(scanners):
        t = scanner.decision.threshold
        for c, (kind, level) in enumerate(conds):
            p = np.array(scores[i][c], dtype=float)
            groups = per_group_metrics(y, p, gens, t) if per_generator and len(kept) else None
            if groups:
                groups.pop("overall")
            rows.append(SweepRow(model=scanner.model.name, perturbation=kind, level=level, threshold=t,
                                 metrics=binary_metrics(y, p, t), per_generator=groups))
    return SweepResult(dataset=dataset, split=split, seed=seed, n_images=len(kept), errors=errors, rows=rows)

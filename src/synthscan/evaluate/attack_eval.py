"""Attack success rates: craft adversarial images on a differentiable model and score them with
it (white-box) and with other models (transfer; the only attack run on gradient-free ones).

The attacked region is the source model's first input tile; clean and attacked images are that
tile saved as 8-bit pixels, scored by normal scans, so rows of different models compare the same
pixels. Success on a fake: detected clean, called real when attacked (evasion). On a real photo:
called real clean, called fake when attacked (false accusation). "uncertain" counts as not fake.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel

from synthscan.data.samples import Sample
from synthscan.detectors.base import CalibratedModel
from synthscan.detectors.tiling import make_tiles, to_tensor_batch
from synthscan.evaluate.adversarial import AttackSpec, attack
from synthscan.evaluate.metrics import binary_metrics
from synthscan.io import ImageLoadError, load_image


class AttackRow(BaseModel):
    attack: str
    source: str
    target: str
    kind: str  # "white-box" | "transfer (black-box)"
    n_fake: int
    n_real: int
    success_fake: float | None  # evaded / fakes detected clean
    success_real: float | None  # falsely accused / reals passed clean
    ap_clean: float | None
    ap_attacked: float | None


def is_differentiable(model: CalibratedModel) -> bool:
    size = model.input_policy.crop_size
    x = torch.rand(1, 3, size, size, requires_grad=True)
    try:
        with torch.enable_grad():
            return bool(model.detector.eval()(x).requires_grad)
    except RuntimeError:
        return False


def _success(y: np.ndarray, before: np.ndarray, after: np.ndarray, label: int) -> float | None:
    base = (y == label) & (before == label)
    return float((after[base] != label).mean()) if base.any() else None


def run_attacks(source: Any, targets: Sequence[Any], samples: Sequence[Sample], specs: Sequence[AttackSpec],
                *, seed: int = 0, batch_size: int = 8) -> tuple[list[AttackRow], int]:
    """Rows for every attack x target. `source` and `targets` are `Scanner`s; `source` must be
    differentiable and is scored as the white-box target. Returns (rows, unreadable files)."""
    if not is_differentiable(source.model):
        raise ValueError(f"{source.model.name} is not differentiable: attack a differentiable model and "
                         "score this one as a transfer target")
    images, ys, errors = [], [], 0
    for s in samples:
        try:
            im = load_image(s.path)
        except ImageLoadError:
            errors += 1
            continue
        images.append(dataclasses.replace(im, rgb=make_tiles(im.rgb, source.model.input_policy).crops[0]))
        ys.append(s.y)
    y = np.array(ys)
    scanners = [source, *targets]

    def scores(imgs) -> list[np.ndarray]:
        return [np.array([r.p_fake for r in sc.scan_images(imgs)]) for sc in scanners]

    clean = scores(images)
    x = to_tensor_batch(np.stack([im.rgb for im in images]))
    det = source.model.detector.eval()
    rows = []
    for spec in specs:
        g = torch.Generator().manual_seed(seed)
        adv = torch.cat([attack(det, x[i:i + batch_size], torch.from_numpy(y[i:i + batch_size]).float(), spec, g)
                         for i in range(0, len(x), batch_size)])
        pixels = (adv * 255).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
        attacked = scores([dataclasses.replace(im, rgb=np.ascontiguousarray(p)) for im, p in zip(images, pixels)])
        for k, sc in enumerate(scanners):
            t = sc.decision.threshold
            before, after = (clean[k] >= t).astype(int), (attacked[k] >= t).astype(int)
            rows.append(AttackRow(
                attack=spec.label, source=source.model.name, target=sc.model.name,
                kind="white-box" if k == 0 else "transfer (black-box)",
                n_fake=int(y.sum()), n_real=int((y == 0).sum()),
                success_fake=_success(y, before, after, 1), success_real=_success(y, before, after, 0),
                ap_clean=binary_metrics(y, clean[k], t)["ap"], ap_attacked=binary_metrics(y, attacked[k], t)["ap"],
            ))
    return rows, errors

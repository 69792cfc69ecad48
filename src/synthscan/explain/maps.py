"""Attribution maps as data: one (H, W) map per method, stitched from per-crop maps, and boxes.

Every attribution method (`methods.py`) returns `AttributionMap`s; `stitch` turns per-crop maps
back into one map of the whole image and `top_regions` turns a map into boxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage

from synthscan.explain.schema import Region


@dataclass
class AttributionMap:
    method: str  # a registered method's name; activation maps are "activations:<layer>"
    target: str  # "fake" or "real" ("any" for activation maps)
    values: np.ndarray  # (H, W) float32 in 0..1, the image's size
    coverage: float  # fraction of the image's pixels the explained tiles cover
    note: str = ""  # how to read this particular map, when the method's generic note is not enough
    warnings: list[str] = field(default_factory=list)
    regions: list[Region] | None = None  # the method's own regions; None: `top_regions` of `values`


def stitch(
    maps: np.ndarray, boxes: Sequence[tuple[int, int, int, int]], shape: tuple[int, int], *, resized: bool = False
) -> tuple[np.ndarray, float]:
    """Per-crop maps (N, crop, crop) -> one (H, W) map, averaged where tiles overlap.

    A crop covers its box's pixels from its top-left corner (padding lies beyond the box); the
    maps of `resized` crops (upscaled small images, resize-mode detectors) are resized to their
    box. Pixels no tile covers (when an image needs more than `max_tiles` crops) stay 0; the
    returned coverage says which fraction is covered.
    """
    h, w = shape
    total = np.zeros((h, w), np.float64)
    count = np.zeros((h, w), np.float64)
    for crop_map, (x0, y0, x1, y1) in zip(maps, boxes):
        bw, bh = x1 - x0, y1 - y0
        if resized:
            patch = np.asarray(Image.fromarray(crop_map.astype(np.float32)).resize((bw, bh), Image.BILINEAR))
        else:
            patch = crop_map[:bh, :bw]
        total[y0:y1, x0:x1] += patch
        count[y0:y1, x0:x1] += 1
    covered = count > 0
    total[covered] /= count[covered]
    return total.astype(np.float32), float(covered.mean())


def scale_to_peak(values: np.ndarray) -> np.ndarray:
    """Scale a non-negative map to 0..1 by its maximum (all zeros stays all zeros)."""
    values = np.nan_to_num(np.maximum(values, 0)).astype(np.float32)
    peak = float(values.max()) if values.size else 0.0
    return values / peak if peak > 0 else values


def top_regions(
    values: np.ndarray, *, source: str = "gradcam", threshold: float = 0.5, max_regions: int = 3,
    min_area: float = 0.002,
) -> list[Region]:
    """Boxes around the connected areas where the 0..1 map is >= `threshold`, strongest first.

    Strength is the component's attribution mass (sum of the map over it), so a large clear
    area outranks a one-pixel spike; `Region.score` is the mean map value inside the box.
    Components smaller than `min_area` of the image are dropped as noise.
    """
    labels, n = ndimage.label(values >= threshold)
    if n == 0:
        return []
    index = np.arange(1, n + 1)
    mass = ndimage.sum(values, labels, index)
    area = ndimage.sum(np.ones_like(values), labels, index)
    slices = ndimage.find_objects(labels)
    regions = []
    for i in np.argsort(-mass):
        if area[i] < min_area * values.size:
            continue
        ys, xs = slices[i]
        box = (xs.start, ys.start, xs.stop, ys.stop)
        regions.append(Region(box=box, score=round(float(values[ys, xs].mean()), 4), source=source))
        if len(regions) == max_regions:
            break
    return regions

"""Tile-score map: a heatmap for any tile-based detector, gradients or not.

The image is covered by the detector's own crops, overlapping by half (stride = crop / 2),
each crop is scored through the model's normal path (`tiling.score_tiles`, then its Platt
calibration), and every pixel gets the mean calibrated P(target) of the crops covering it.
It needs nothing from the detector but its scores, so it explains gradient-free models such as
texture-gbm, and it shows where a tile-based verdict comes from for every detector.

Cost is one model call per crop, so the number of crops is capped (`MAX_MAP_TILES`): when the
half-overlapping grid is larger, the stride grows (less overlap) until it fits; if even
non-overlapping crops exceed the cap, an evenly spread subset is scored and part of the image
stays uncovered (`coverage` < 1). Either way the map says so in its warnings. Crops the scan has
already scored (`known`, by box) are not scored again.

The map picture uses the map stretched over this image's own range (lowest tile 0, highest 1),
since what matters for localisation is which tiles score higher than the rest; the note gives the
range in probabilities. Its `regions` are the top-scoring crops themselves (up to 3, each
overlapping a stronger one by at most half, and only those in the upper half of the range): a
crop is what the detector actually scored, while a threshold on the smooth stitched map tends to
join most of the image into one box. An image whose tiles all score alike
(spread < `MIN_SPREAD`), or that one crop covers, gives an all-zero map: no region.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from synthscan.detectors.base import CalibratedModel, Detector
from synthscan.detectors.tiling import Tiles, evenly_spaced, make_tiles, score_tiles, spread_starts
from synthscan.explain.maps import AttributionMap, stitch
from synthscan.explain.methods import AttributionMethod
from synthscan.explain.schema import Box, Region, box_area, box_intersection

METHOD = "tile-scores"
MAX_MAP_TILES = 64  # model calls per map
MIN_SPREAD = 0.01  # P(target) range below which the tiles do not localise anything
MAX_REGIONS = 3


def grid_counts(height: int, width: int, crop: int, max_tiles: int) -> tuple[int, int]:
    """Crops per column and per row: half-overlapping when that fits in `max_tiles`, else fewer
    (at least enough to cover each axis, ceil(L / crop), as long as that fits)."""
    def half(length: int) -> int:
        return math.ceil(max(length - crop, 0) / (crop / 2)) + 1

    def cover(length: int) -> int:
        return math.ceil(length / crop)

    ny, nx = half(height), half(width)
    while ny * nx > max_tiles and (ny > cover(height) or nx > cover(width)):
        # Drop a row or column of crops from the axis with the most overlap to spare.
        if ny / cover(height) >= nx / cover(width) and ny > cover(height):
            ny -= 1
        else:
            nx -= 1
    return ny, nx


def grid_tiles(rgb: np.ndarray, crop: int, max_tiles: int = MAX_MAP_TILES) -> Tiles:
    """The map's crops (at most `max_tiles`, evenly spread when non-overlapping ones are too many)."""
    h, w = rgb.shape[:2]
    ny, nx = grid_counts(h, w, crop, max_tiles)
    positions = evenly_spaced([(y, x) for y in spread_starts(h, crop, ny) for x in spread_starts(w, crop, nx)], max_tiles)
    crops = np.stack([rgb[y : y + crop, x : x + crop] for y, x in positions])
    return Tiles(crops, [(x, y, x + crop, y + crop) for y, x in positions])


def tile_score_map(
    model: CalibratedModel | Detector, rgb: np.ndarray, target: str = "fake", *,
    known: Mapping[Box, float] | None = None, max_tiles: int = MAX_MAP_TILES,
) -> AttributionMap:
    """The tile-score map of one (H, W, 3) uint8 image for target "fake" or "real".

    model: a `CalibratedModel` (probabilities are calibrated) or a bare detector (its logits go
    through a sigmoid). known: calibrated P(fake) of crops already scored, by box.
    """
    model = model if isinstance(model, CalibratedModel) else CalibratedModel.uncalibrated(model)
    policy = model.input_policy
    h, w = rgb.shape[:2]
    warnings = []
    if policy.mode == "resize" or min(h, w) < policy.crop_size:
        tiles = make_tiles(rgb, policy)  # one crop sees the whole image (or padding): nothing to compare
    else:
        tiles = grid_tiles(rgb, policy.crop_size, max_tiles)
        half = grid_counts(h, w, policy.crop_size, h * w)
        if len(tiles.boxes) < half[0] * half[1]:
            warnings.append(f"the tile-score map scored {len(tiles.boxes)} crops (its cap) instead of the "
                            f"{half[0] * half[1]} half-overlapping ones: its resolution is coarser")
    known = known or {}
    todo = [i for i, box in enumerate(tiles.boxes) if box not in known]
    p_fake = np.array([known.get(box, np.nan) for box in tiles.boxes], np.float64)
    if todo:
        (raw,) = score_tiles(model.detector, [Tiles(tiles.crops[todo], [tiles.boxes[i] for i in todo])])
        p_fake[todo] = model.probability(raw)
    p = p_fake if target == "fake" else 1.0 - p_fake
    crop = tiles.crops.shape[1]
    resized = tiles.upscaled or policy.mode == "resize"
    values, coverage = stitch(np.broadcast_to(p[:, None, None], (len(p), crop, crop)), tiles.boxes, (h, w),
                              resized=resized)
    covered = stitch(np.ones((len(p), crop, crop), np.float32), tiles.boxes, (h, w), resized=resized)[0] > 0
    low, high = float(values[covered].min()), float(values[covered].max())
    if high - low < MIN_SPREAD:
        note = f"All {len(p)} crops score P({target}) {p.min():.2f}-{p.max():.2f}: the map does not single out a region."
        stretched = np.zeros_like(values)
    else:
        note = (f"Each {crop} px crop's P({target}) from the detector, averaged where crops overlap "
                f"({len(p)} crops); dark = {low:.2f}, bright = {high:.2f}.")
        stretched = np.where(covered, (values - low) / (high - low), 0).astype(np.float32)
    regions = top_crops(stretched, tiles.boxes) if high - low >= MIN_SPREAD else []
    return AttributionMap(METHOD, target, stretched, coverage, note=note, warnings=warnings, regions=regions)


def _overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller box's area."""
    smaller = min(box_area(a), box_area(b))
    return box_intersection(a, b) / smaller if smaller else 0.0


def top_crops(stretched: np.ndarray, boxes: list[Box], max_regions: int = MAX_REGIONS) -> list[Region]:
    """The crops with the highest mean of the stretched map, strongest first (see the module docstring)."""
    scores = [float(stretched[y0:y1, x0:x1].mean()) for x0, y0, x1, y1 in boxes]
    chosen: list[Region] = []
    for i in np.argsort(scores)[::-1]:
        if scores[i] < 0.5 or len(chosen) == max_regions:
            break
        if all(_overlap(boxes[i], r.box) <= 0.5 for r in chosen):
            chosen.append(Region(box=tuple(int(v) for v in boxes[i]), score=round(scores[i], 4), source=METHOD))
    return chosen


class TileScores(AttributionMethod):
    """Needs nothing but the model's scores: every detector supports it."""

    name, title = METHOD, "Tile scores"

    def attribute(self, model, rgb, target="fake", *, known=None) -> list[AttributionMap]:
        return [tile_score_map(model, rgb, target, known=known)]

"""Measures at strong edges: stair-stepped (aliased) edges and sharpening halos."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from synthscan.explain.artifacts.analysis import Analysis, Measured
from synthscan.explain.artifacts.windows import Grid


def _edge_deviation(a: Analysis) -> np.ndarray:
    """Degrees between each pixel's own gradient (which sees stair steps) and the edge's local
    orientation (from smoothed gradients); orientations are modulo 180, so wrapped to [0, 90]."""
    raw_gy, raw_gx = a.pixel_gradient
    pixel = np.arctan2(raw_gy, raw_gx)
    return np.degrees(np.abs((pixel - a.edge_orientation + np.pi / 2) % np.pi - np.pi / 2))


def edge_aliasing(a: Analysis) -> Measured | None:
    """Gradient vs local edge orientation at strong edges."""
    if a.edges.mean() < 0.002:
        return None
    deviation = _edge_deviation(a)
    edges = a.edges.astype(np.float32)

    def deviation_on(grid: Grid) -> np.ndarray:
        return np.where(grid.mean(edges) > 0.01, grid.mean(deviation, edges), np.nan)

    if (best := a.peak(deviation_on)) is None:
        return None
    return Measured.of("edge-aliasing", best, a.box(deviation_on),
                    f"Along high-contrast edges pixel gradients deviate {best:.0f} degrees on average from the "
                    "edge's direction: the edges are stair-stepped (aliased) rather than smooth.")


def over_sharpening(a: Analysis) -> Measured | None:
    """Overshoot beyond the smoothed ~9x9 range at edges, / edge contrast."""
    if a.edges.mean() < 0.002:
        return None
    # The range of the smoothed grey (sigma ~2 px) over ~9x9 px, taken at half size: 4x cheaper.
    high = a.full_size(ndimage.maximum_filter(a.half_smooth, 5))
    low = a.full_size(ndimage.minimum_filter(a.half_smooth, 5))
    overshoot = np.maximum(a.grey - high, 0) + np.maximum(low - a.grey, 0)
    near_edges = 1 - a.flat_pixels

    def relative_on(grid: Grid) -> np.ndarray:
        relative = grid.mean(overshoot, near_edges) / (grid.mean(high - low, near_edges) + 1e-3)
        return np.where(grid.mean(near_edges) > 0.02, relative, np.nan)

    if (best := a.peak(relative_on)) is None:
        return None
    return Measured.of("over-sharpening", best, a.box(relative_on),
                    f"Pixels next to edges overshoot the surrounding brightness range by {best:.0%} of the edge's "
                    "contrast on average, the bright/dark halos of strong sharpening.")

"""The analysis cache: one image's intermediate maps, computed once and shared by every measure.

Grey = BT.601 luma in 0..1; residual = grey minus its Gaussian blur (sigma 1 px), both from the
`ImageTraces` the explainer shares with the trace views. Per-window maps are cached per grid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import ndimage

from synthscan.colour import BT601_YCBCR
from synthscan.explain.artifacts.thresholds import Threshold, threshold
from synthscan.explain.artifacts.windows import Grid, half_size
from synthscan.explain.schema import Box, Extent, Region
from synthscan.explain.traces import ImageTraces, to_float

EDGE_CONTRAST = 0.08  # gradient magnitude of the blurred grey (0..1 per pixel) that makes a pixel an "edge"
FLAT_STRUCTURE = 0.005  # sigma 2-6 band-pass std under which a block has no structure
UNIFORM_STRUCTURE = 0.01  # ... and under which a surface counts as uniform (noise may remain)
OCTAVE_FLOOR = 0.5 / 255  # RMS of the 1/8-1/4 cycle/px octave below which a block has no octave ratio

# Half-band low-pass (the classic 7-tap interpolation filter): gain 1 at DC, 1/2 at 1/4 cycle/px,
# 0 at 1/2. The image minus its output keeps the band above 1/4 cycle/px (per axis), which any 2x
# up-sampling or a blur leaves nearly empty.
HALF_BAND = np.array([-1, 0, 9, 16, 9, 0, -1], dtype=np.float32) / 32


@dataclass
class Measured:
    id: str
    value: float  # the raw measurement the score ramps from
    score: float
    box: Box | None
    reason: str
    extent: Extent = "region"

    @classmethod
    def of(cls, artifact_id: str, value: float, box: Box | None, reason: str, extent: Extent = "region") -> Measured:
        """A measurement scored by its threshold in `thresholds.json`."""
        return cls(artifact_id, value, threshold(artifact_id).score(value), box, reason, extent)


GridMap = Callable[[Grid], np.ndarray]
__all__ = ["Analysis", "GridMap", "Measured", "Threshold", "threshold"]


class Analysis:
    """The image's shared intermediate maps, computed once for all measures."""

    def __init__(self, rgb: np.ndarray | ImageTraces, regions: list[Region] | None):
        self.traces = ImageTraces.of(rgb)  # the explainer passes the one it shares with the trace views
        self.rgb = self.traces.rgb
        self.regions = regions
        self.grey = self.traces.grey
        self.blocks = Grid.blocks(self.grey.shape)
        self.windows = Grid.sliding(self.grey.shape)
        smooth = self.traces.blurred
        self.residual = self.traces.high_pass
        # Central differences of the blurred grey (a Sobel's smoothing across adds little after the
        # blur, and costs four filter passes).
        self.gy, self.gx = np.gradient(smooth)
        self.gradient = np.hypot(self.gx, self.gy)
        self.edges = self.gradient > EDGE_CONTRAST
        low = ndimage.correlate1d(ndimage.correlate1d(self.grey, HALF_BAND, axis=0), HALF_BAND, axis=1)
        self.upper_band = self.grey - low
        # The octave below (1/8-1/4 cycle/px): the low-passed image minus its own low-pass at half
        # the frequency (a Gaussian of sigma 1.5 px has gain 1/2 at 1/8 cycle/px).
        self.lower_octave = low - ndimage.gaussian_filter(low, 1.5)
        # Structure: the band between sigma 2 and sigma 6 (detail of ~10-40 px), where a flat
        # background has none; computed at half resolution: 4x cheaper, same band.
        half = half_size(self.grey)
        self.half_smooth = ndimage.gaussian_filter(half, 1.0)  # the grey at half size, sigma ~2 px at full size
        self.band = self.full_size(self.half_smooth - ndimage.gaussian_filter(half, 3.0))
        self._per_grid: dict[tuple[str, int], np.ndarray] = {}
        self.detail = self.detail_on(self.blocks)

    def full_size(self, half: np.ndarray) -> np.ndarray:
        """A half-size map repeated 2x2 and padded back to the image's size."""
        full = np.repeat(np.repeat(half, 2, axis=0), 2, axis=1)[: self.grey.shape[0], : self.grey.shape[1]]
        return self.blocks.fit(full)

    @cached_property
    def pixel_gradient(self) -> tuple[np.ndarray, np.ndarray]:
        """(d/dy, d/dx) of the unsmoothed grey (central differences): they see single-pixel steps."""
        gy, gx = np.gradient(self.grey)
        return gy, gx

    @cached_property
    def edge_orientation(self) -> np.ndarray:
        """Each pixel's dominant local orientation (radians): the 5x5 structure tensor of the
        smoothed gradients, in the doubled-angle representation."""
        jxx = ndimage.uniform_filter(self.gx * self.gx, 5)
        jyy = ndimage.uniform_filter(self.gy * self.gy, 5)
        jxy = ndimage.uniform_filter(self.gx * self.gy, 5)
        return 0.5 * np.arctan2(2 * jxy, jxx - jyy)

    @cached_property
    def flat_pixels(self) -> np.ndarray:
        """1 where no strong edge lies within 2 px, else 0."""
        return (~ndimage.maximum_filter(self.edges, 5)).astype(np.float32)

    @cached_property
    def chroma(self) -> tuple[np.ndarray, np.ndarray]:
        """(Cb, Cr) of BT.601 in -0.5..0.5."""
        cb, cr = np.moveaxis(to_float(self.rgb) @ BT601_YCBCR[1:].T.astype(np.float32), 2, 0)
        return cb, cr

    def _cached(self, name: str, grid: Grid, compute: GridMap) -> np.ndarray:
        key = (name, id(grid))
        if key not in self._per_grid:
            self._per_grid[key] = compute(grid)
        return self._per_grid[key]

    def detail_on(self, grid: Grid) -> np.ndarray:
        """Fine detail per window: RMS of the high-pass residual."""
        return self._cached("detail", grid, lambda g: np.sqrt(g.mean(self.residual**2)))

    @cached_property
    def octave_log_ratio(self) -> tuple[np.ndarray, np.ndarray]:
        """Per pixel: log(upper band / the octave below), band energies averaged over 9 x 9 px,
        and where it is measurable (the octave below is not almost empty)."""
        upper = ndimage.uniform_filter(self.upper_band**2, 9)
        lower = ndimage.uniform_filter(self.lower_octave**2, 9)
        log_ratio = 0.5 * np.log(np.maximum(upper, 1e-12) / np.maximum(lower, 1e-12))
        return log_ratio, (lower > OCTAVE_FLOOR**2).astype(np.float32)

    def octave_ratio_on(self, grid: Grid) -> np.ndarray:
        """Upper band / the octave below, per window: the geometric mean of the measurable pixels'
        ratios; NaN where less than a tenth of the window is measurable. A mean of logs, so a
        window half inside a smoothed area reads halfway (a ratio of the window's energies would
        not: the smoothed half adds to neither band)."""
        def compute(g: Grid) -> np.ndarray:
            log_ratio, measurable = self.octave_log_ratio
            return np.where(g.mean(measurable) >= 0.1, np.exp(g.mean(log_ratio, measurable)), np.nan)

        return self._cached("octave-ratio", grid, compute)

    def structure_on(self, grid: Grid) -> np.ndarray:
        """Structure per window: RMS of the sigma 2-6 band."""
        return self._cached("structure", grid, lambda g: np.sqrt(g.mean(self.band**2)))

    def peak(self, grid_map: GridMap) -> float | None:
        """A measure's value: its map's strongest block; None when no block has a value."""
        per_block = grid_map(self.blocks)
        return float(np.nanmax(per_block)) if np.isfinite(per_block).any() else None

    def box(self, grid_map: GridMap) -> Box:
        """The box of a measure, from its map over the sliding windows."""
        return self.windows.box(grid_map(self.windows), self.regions)

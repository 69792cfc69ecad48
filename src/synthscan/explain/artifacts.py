"""Measured artifacts: the taxonomy's pixel-measurable (M) entries, each with score, box and reason.

Every measure looks at the image through a grid of blocks (about 8 across the short side,
at least 16 px) and reports:
- a score in 0..1: `ramp(measurement, onset, full)`, i.e. 0 at or below `onset`, 1 at or above
  `full`, linear between (the onsets and fulls are in `MEASURES`'s docstrings and constants);
- the box where it is anomalous: the same per-block map computed over windows of the block's
  size sliding by a quarter block, thresholded at halfway between the image's median window
  and its strongest one; the connected windows around the strongest (each standing for the cell
  around its centre) give the box. A region of any size gets a box of its size, to about an
  eighth of a block.
- a one-sentence reason quoting the measurement.
Only findings with score >= MIN_SCORE are returned: those about a region first, then those about
the whole image (colour saturation, chroma residual, smooth background), each strongest first
(`schema.ranked`). `regions` (from Grad-CAM) break near-ties when choosing the box: windows
inside a region count 25% more there.

Measures (grey = BT.601 luma in 0..1, residual = grey minus its Gaussian blur, sigma 1 px):
- upsampling-pixel-correlation: 2x up-sampling makes every other pixel a fixed blend of its
  neighbours (Popescu & Farid 2005), so some difference of neighbours alternates small/large
  column by column (and row by row): first differences after nearest up-sampling (pixel pairs
  are equal), third-order differences after linear up-sampling (the first differences are then
  locally linear at every other pixel, while first and second differences stay phase-symmetric).
  Measured per block and order as |mean |d| at even - odd positions| / mean |d| ("parity",
  0..1); the larger of the two orders counts.
- spectral-periodic-peaks: the strongest isolated peak of the residual spectrum (`traces`),
  located by the local Fourier coefficient of the residual at that frequency.
- over-smoothing: blocks whose upper band (RMS above 1/4 cycle/px, the image minus its half-band
  low-pass) is low relative to the octave below it (1/8-1/4 cycle/px); measured as the drop
  below the image's median ratio (per window, the geometric mean of the pixels' local ratios).
  Camera pixels have a smoothly falling spectrum, so adjacent octaves keep a steady ratio in
  strong and faint texture alike; blurs and any 2x up-sampling (nearest, linear, cubic) empty the
  upper octave but much less the one below. Pixels with almost nothing in the lower octave (RMS
  under half a grey level: clipped, compressed-flat or blurred flat areas) have no ratio to
  measure and are left out.
- resolution-inconsistency: spread of that octave ratio between the sharpest and blurriest
  blocks (log2 of the 90th / 10th percentile).
- grid-checkerboard-pattern: the residual's local Fourier coefficient at the period-2 frequencies
  (a column grid, a row grid, a checkerboard: (0, 1/2), (1/2, 0), (1/2, 1/2) cycles/px) over its
  RMS. A pattern added with a fixed phase, as strided transposed convolutions leave, adds up over
  a block; noise averages out (camera images still reach 0.1-0.2: demosaicing leaves some).
- random-noise-detailed-areas: noise level per block (mean |residual| away from edges);
  the largest deviation from the image's median noise, in octaves (log2 ratio).
- artificial-noise-uniform-surfaces: on uniform surfaces (little structure, some noise, away
  from edges), |lag-1 correlation of the residual along x - along y| over its variance: streaked
  or patterned noise runs along one direction, camera grain about equally both ways.
- edge-aliasing: at strong edges, the mean angle between each pixel's gradient and the
  local (5x5 structure tensor) edge orientation; stair-stepped edges reach 20-45 degrees.
- over-sharpening: at strong edges, how far the pixels overshoot the range of their smoothed
  9x9 neighbourhood, as a fraction of the edge's contrast (halos of unsharp masking).
- colour-distribution-anomaly: the 90th percentile of HSV saturation.
- colour-coherence-break: where the luma is smooth (gradient under a quarter of an edge's), the
  mean change of the chroma (Cb, Cr at half size, which skips demosaicing noise) per pixel, in
  1/255: a colour transition no brightness edge explains.
- chrominance-residual-anomaly: high-pass energy of the chroma channels (Cb, Cr) relative to
  the luma's; demosaicing and JPEG chroma subsampling keep it low in camera images.
- smooth-background: the share of the image in flat, almost noiseless blocks.
Not measured here: loss-of-fine-detail, blurred-fine-boundaries and jagged-curved-edges (tries
at each did not box planted examples at thresholds that real photos set), and the entries marked
both M and S (texture repetition, boundary glow, ...), which CLIP zero-shot scoring names.
Onsets sit near the 90th percentile and fulls near the 99th percentile of each raw value over
150 synthbench train real photos (256 track), so about 1 photo in 10 crosses each onset. Those
percentiles, for reals and for fakes, are printed by
`python -m synthscan.explain.artifacts --calibrate ../shared/synthbench/manifest.csv`: on that
set the fakes' distributions are close to the reals' (only saturation and the spectral peaks
shift noticeably), so these measures describe an image; they do not detect generation. They are
observations for a person (or a language model) to weigh, next to the detector's verdict.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import ndimage

from synthscan.explain.schema import ArtifactFinding, Box, Extent, Region, ranked
from synthscan.explain.taxonomy import load_taxonomy
from synthscan.explain.traces import ImageTraces, channel_extremes, high_pass, to_float

MIN_SCORE = 0.25
MIN_BLOCK = 16
BLOCKS_ACROSS = 8  # blocks along the short side
SLIDE = 4  # sliding windows (for boxes) start a quarter of a block apart
EDGE_CONTRAST = 0.08  # gradient magnitude of the blurred grey (0..1 per pixel) that makes a pixel an "edge"
FLAT_STRUCTURE = 0.005  # sigma 2-6 band-pass std under which a block has no structure
UNIFORM_STRUCTURE = 0.01  # ... and under which a surface counts as uniform (noise may remain)
OCTAVE_FLOOR = 0.5 / 255  # RMS of the 1/8-1/4 cycle/px octave below which a block has no octave ratio
PARITY_ORDERS = (1, 3)  # difference orders of the up-sampling parity test (nearest, linear)


# Half-band low-pass (the classic 7-tap interpolation filter): gain 1 at DC, 1/2 at 1/4 cycle/px,
# 0 at 1/2. The image minus its output keeps the band above 1/4 cycle/px (per axis), which any 2x
# up-sampling or a blur leaves nearly empty.
HALF_BAND = np.array([-1, 0, 9, 16, 9, 0, -1], dtype=np.float32) / 32


def ramp(value: float, onset: float, full: float) -> float:
    return float(np.clip((value - onset) / (full - onset), 0.0, 1.0))


def half_size(values: np.ndarray) -> np.ndarray:
    """Means of 2x2 pixel blocks (an odd last row or column is repeated first)."""
    h, w = values.shape
    values = np.pad(values, ((0, h % 2), (0, w % 2)), mode="edge")
    return values.reshape(values.shape[0] // 2, 2, values.shape[1] // 2, 2).mean(axis=(1, 3))


@dataclass
class Grid:
    """Rectangular windows over the image (starts and ends per axis) and window-wise means.

    `Grid.blocks`: a partition into nearly equal blocks, where the measures are scored.
    `Grid.sliding`: windows of the same size at a quarter of their side apart, where the boxes
    are drawn: each window stands for the cell around its centre, so a box is 4x finer.
    """

    y0: np.ndarray
    y1: np.ndarray
    x0: np.ndarray
    x1: np.ndarray
    shape: tuple[int, int]  # image (H, W)

    @staticmethod
    def side(shape: tuple[int, int]) -> int:
        return max(MIN_BLOCK, min(shape) // BLOCKS_ACROSS)

    @classmethod
    def blocks(cls, shape: tuple[int, int]) -> Grid:
        side = cls.side(shape)
        ys, xs = (np.linspace(0, n, max(1, round(n / side)) + 1).round().astype(int) for n in shape)
        return cls(ys[:-1], ys[1:], xs[:-1], xs[1:], shape)

    @classmethod
    def sliding(cls, shape: tuple[int, int]) -> Grid:
        side = cls.side(shape)

        def axis(n: int) -> tuple[np.ndarray, np.ndarray]:
            size = min(side, n)
            starts = np.linspace(0, n - size, int(np.ceil((n - size) / max(side // SLIDE, 1))) + 1).round().astype(int)
            return starts, starts + size

        (y0, y1), (x0, x1) = axis(shape[0]), axis(shape[1])
        return cls(y0, y1, x0, x1, shape)

    def mean(self, values: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Mean of `values` per window (weighted; NaN where a window's weights sum to 0)."""
        values = self.fit(values)
        if weights is None:
            counts = np.outer(self.y1 - self.y0, self.x1 - self.x0).astype(np.float64)
        else:
            weights = self.fit(weights)
            values = values * weights
            counts = self.sums(weights)
        sums = self.sums(values)
        if values.min() >= 0:  # the table's differences can leave -1e-17 where all values are 0
            sums = np.maximum(sums, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, sums / counts, np.nan)

    def sums(self, values: np.ndarray) -> np.ndarray:
        """Window sums: one pass sums the cells between all window edges, then a summed-area
        table over those few cells adds them up per window."""
        ys, xs = np.unique(np.r_[self.y0, self.y1]), np.unique(np.r_[self.x0, self.x1])  # from 0 to H (W)
        # Along rows first: reduceat over the contiguous axis is much faster than over rows.
        cells = np.add.reduceat(np.add.reduceat(values, xs[:-1], axis=1), ys[:-1], axis=0)
        table = np.zeros((len(ys), len(xs)))
        table[1:, 1:] = cells.astype(np.float64).cumsum(0).cumsum(1)
        (iy0, iy1), (ix0, ix1) = ([np.searchsorted(edges, e) for e in ends]
                                  for edges, ends in ((ys, (self.y0, self.y1)), (xs, (self.x0, self.x1))))
        return table[np.ix_(iy1, ix1)] - table[np.ix_(iy0, ix1)] - table[np.ix_(iy1, ix0)] + table[np.ix_(iy0, ix0)]

    def fit(self, a: np.ndarray) -> np.ndarray:
        """Pad maps that are a pixel short (differences) by repeating their last row/column."""
        a = a.astype(np.float32, copy=False)
        if a.shape == self.shape:
            return a
        pad = ((0, self.shape[0] - a.shape[0]), (0, self.shape[1] - a.shape[1]))
        return np.pad(a, pad, mode="edge")

    def cells(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Each window's cell: from halfway to the previous window's centre to halfway to the
        next one's (the image's edge for the first and last). For blocks, the blocks themselves."""
        def axis(start: np.ndarray, end: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
            centre = (start + end) / 2
            bounds = np.concatenate([[0], (centre[1:] + centre[:-1]) / 2, [n]]).round().astype(int)
            return bounds[:-1], bounds[1:]

        return (*axis(self.y0, self.y1, self.shape[0]), *axis(self.x0, self.x1, self.shape[1]))

    def box(self, values: np.ndarray, regions: list[Region] | None = None) -> Box:
        """Pixel box of the connected cells around the strongest one (see module docstring)."""
        values = np.nan_to_num(values, nan=np.nanmin(values) if np.isfinite(values).any() else 0.0)
        if regions:
            values = values * (1 + 0.25 * self._inside(regions))
        peak = np.unravel_index(np.argmax(values), values.shape)
        typical = np.median(values)
        labels, _ = ndimage.label(values >= typical + 0.5 * (values[peak] - typical))
        rows, cols = np.nonzero(labels == labels[peak])
        cy0, cy1, cx0, cx1 = self.cells()
        return (int(cx0[cols.min()]), int(cy0[rows.min()]), int(cx1[cols.max()]), int(cy1[rows.max()]))

    def _inside(self, regions: list[Region]) -> np.ndarray:
        cy, cx = (self.y0 + self.y1) / 2, (self.x0 + self.x1) / 2
        inside = np.zeros((len(cy), len(cx)))
        for r in regions:
            x0, y0, x1, y1 = r.box
            inside = np.maximum(inside, np.outer((cy >= y0) & (cy < y1), (cx >= x0) & (cx < x1)))
        return inside


@dataclass
class Measured:
    id: str
    value: float  # the raw measurement the score ramps from
    score: float
    box: Box | None
    reason: str
    extent: Extent = "region"


GridMap = Callable[[Grid], np.ndarray]


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
        rgb = to_float(self.rgb)
        cb = -0.168736 * rgb[..., 0] - 0.331264 * rgb[..., 1] + 0.5 * rgb[..., 2]
        cr = 0.5 * rgb[..., 0] - 0.418688 * rgb[..., 1] - 0.081312 * rgb[..., 2]
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


def upsampling_parity(a: Analysis) -> Measured | None:
    """Parity of neighbour differences; onset 0.2, full 0.45 (uniform random pixels: ~0.02)."""
    # Per order and axis, the window sums of |differences| at all and at even positions, and the
    # count of even positions, on both grids; a window's odd-position sums are its total minus its
    # even sums. The full-size maps live one order and axis at a time (a 12 MP image's are 46 MB each).
    grids = (a.blocks, a.windows)
    sums: dict[tuple[int, int], list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for order in PARITY_ORDERS:
        for axis in (0, 1):
            d = a.blocks.fit(np.abs(np.diff(a.grey, n=order, axis=axis)))
            even = np.expand_dims(np.arange(d.shape[axis]) % 2 == 0, 1 - axis).astype(np.float32)
            even = np.broadcast_to(even, d.shape)
            for g in grids:
                sums.setdefault((id(g), order), []).append(
                    (np.maximum(g.sums(d * even), 0.0), np.maximum(g.sums(d), 0.0), g.sums(even)))
            del d

    def parity_on(grid: Grid) -> np.ndarray:
        n_all = np.outer(grid.y1 - grid.y0, grid.x1 - grid.x0)
        per_order = []
        for order in PARITY_ORDERS:
            per_axis = []
            for s_even, s_all, n_even in sums[(id(grid), order)]:
                with np.errstate(invalid="ignore", divide="ignore"):
                    mean_even = np.where(n_even > 0, s_even / n_even, np.nan)
                    mean_odd = np.where(n_all - n_even > 0, np.maximum(s_all - s_even, 0.0) / (n_all - n_even), np.nan)
                per_axis.append(np.abs(mean_even - mean_odd) / (mean_even + mean_odd + 2 / 255))
            per_order.append(np.nanmean(per_axis, axis=0))
        return np.max(per_order, axis=0)

    parity = parity_on(a.blocks)
    best = float(np.nanmax(parity))
    share = float(np.nanmean(parity > 0.2))
    return Measured("upsampling-pixel-correlation", best, ramp(best, 0.2, 0.45), a.box(parity_on),
                    f"Neighbouring-pixel differences alternate small/large with a 2 px period (parity {best:.2f}, "
                    f"0 for camera-like pixels) over {share:.0%} of the image, as after nearest-style up-sampling.")


def grid_pattern(a: Analysis) -> Measured | None:
    """Period-2 grid coherent across a region of the residual; onset 0.2, full 0.3."""
    h, w = a.residual.shape
    row_sign = np.where(np.arange(h) % 2, -1.0, 1.0).astype(np.float32)[:, None]
    col_sign = np.where(np.arange(w) % 2, -1.0, 1.0).astype(np.float32)[None, :]
    # The residual's local Fourier coefficients at (0, 1/2), (1/2, 0) and (1/2, 1/2) cycles/px: a
    # pattern added with a fixed phase (the checkerboard of strided transposed convolutions)
    # adds up over a window; sensor noise averages out.
    patterns = (a.residual * col_sign, a.residual * row_sign, a.residual * (row_sign * col_sign))

    def strength_on(grid: Grid) -> np.ndarray:
        return np.max([np.abs(grid.mean(p)) for p in patterns], axis=0) / (a.detail_on(grid) + 1e-4)

    best = float(np.nanmax(strength_on(a.blocks)))
    return Measured("grid-checkerboard-pattern", best, ramp(best, 0.2, 0.3), a.box(strength_on),
                    f"The fine detail carries a regular 2-pixel grid or checkerboard: {best:.0%} of it follows one "
                    "fixed pattern in a region (9 in 10 photographs stay below 20%).")


def spectral_peaks(a: Analysis) -> Measured | None:
    """Strongest residual-spectrum peak; onset 1.0 (the peak threshold of `traces`), full 3.0 log units."""
    peaks = a.traces.high_pass_peaks
    if not peaks:
        return None
    fy, fx, strength = peaks[0]
    h, w = a.residual.shape
    phase = np.exp(-2j * np.pi * (fy * np.arange(h)[:, None] + fx * np.arange(w)[None, :]))
    # Local Fourier coefficient at the peak frequency, relative to the window's residual energy.
    product = a.residual * phase

    def local_on(grid: Grid) -> np.ndarray:
        return np.abs(grid.mean(product.real) + 1j * grid.mean(product.imag)) / (a.detail_on(grid) + 1e-6)

    period = 1 / max(abs(fy), abs(fx))
    jpeg_note = " (8 px periods also come from JPEG blocks)" if abs(period - 8) < 0.5 or abs(period - 8 / 3) < 0.2 else ""
    return Measured("spectral-periodic-peaks", strength, ramp(strength, 1.0, 3.0), a.box(local_on),
                    f"The noise residual's spectrum has {len(peaks)} isolated periodic peak(s); the strongest, at "
                    f"({fy:.3f}, {fx:.3f}) cycles/pixel (period {period:.1f} px), stands {np.exp(strength):.1f}x above "
                    f"its surroundings{jpeg_note}.")


def over_smoothing(a: Analysis) -> Measured | None:
    """Octave-ratio drop below the image's median; onset 59%, full 69% less upper band."""
    ratio = a.octave_ratio_on(a.blocks)
    if np.isfinite(ratio).sum() < 4:
        return None
    typical = float(np.nanmedian(ratio))

    def drop_on(grid: Grid) -> np.ndarray:
        return 1 - a.octave_ratio_on(grid) / typical

    best = float(np.nanmax(drop_on(a.blocks)))
    return Measured("over-smoothing", best, ramp(best, 0.59, 0.69), a.box(drop_on),
                    f"A region has {best:.0%} less of the finest detail (above 1/4 cycle/pixel), relative to the "
                    "detail just coarser, than the rest of the image, as if it had been smoothed or up-sampled.")


def resolution_inconsistency(a: Analysis) -> Measured | None:
    """log2(p90 / p10) of the octave ratio over blocks; onset 1.4, full 1.85 octaves."""
    ratio = a.octave_ratio_on(a.blocks)
    ratio = ratio[np.isfinite(ratio)]
    if len(ratio) < 6:
        return None
    p10, p90 = np.percentile(ratio, [10, 90])
    spread = float(np.log2(p90 / max(p10, 1e-6)))

    def blurriness_on(grid: Grid) -> np.ndarray:
        return -np.log2(np.maximum(a.octave_ratio_on(grid), 1e-6) / p90)

    return Measured("resolution-inconsistency", spread, ramp(spread, 1.4, 1.85), a.box(blurriness_on),
                    f"Sharpness varies {2 ** spread:.1f}x between the sharpest and the blurriest regions; "
                    "the box marks the blurriest, as if rendered at a lower resolution.")


def noise_inconsistency(a: Analysis) -> Measured | None:
    """Block noise (mean |residual| off edges) vs median; onset 3.9, full 6.5 octaves."""
    flat_enough = a.flat_pixels
    abs_residual = np.abs(a.residual)

    def noise_on(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
        return grid.mean(abs_residual, flat_enough), grid.mean(flat_enough) > 0.3

    noise, valid = noise_on(a.blocks)
    valid &= np.isfinite(noise)
    if valid.sum() < 4:
        return None
    typical = float(np.median(noise[valid]))

    def octaves_on(grid: Grid) -> np.ndarray:
        noise, valid = noise_on(grid)
        return np.where(valid & np.isfinite(noise), np.abs(np.log2((noise + 1e-4) / (typical + 1e-4))), 0.0)

    octaves = octaves_on(a.blocks)
    peak = np.unravel_index(np.argmax(octaves), octaves.shape)
    best = float(octaves[peak])
    word = "stronger" if noise[peak] > typical else "weaker"
    return Measured("random-noise-detailed-areas", best, ramp(best, 3.9, 6.5), a.box(octaves_on),
                    f"One region's noise is {2 ** best:.1f}x {word} than the image's typical noise "
                    f"({noise[peak] * 255:.1f} vs {typical * 255:.1f} grey levels), unlike a single camera sensor.")


def patterned_noise(a: Analysis) -> Measured | None:
    """Direction of the noise on uniform surfaces: |lag-1 correlation along x - along y| of the
    residual; onset 0.86, full 1.08 (camera grain is about as correlated both ways)."""
    r = a.residual
    # Uniform surfaces: pixels away from edges, in windows with little structure but some noise.
    flat = a.flat_pixels
    along_x, along_y = a.blocks.fit(r[:, 1:] * r[:, :-1]), a.blocks.fit(r[1:, :] * r[:-1, :])
    energy = r * r

    def anisotropy_on(grid: Grid) -> np.ndarray:
        uniform = (a.structure_on(grid) < UNIFORM_STRUCTURE) & (a.detail_on(grid) > 0.5 / 255)
        uniform &= grid.mean(flat) > 0.5
        power = grid.mean(energy, flat) + 1e-12
        return np.where(uniform, np.abs(grid.mean(along_x, flat) - grid.mean(along_y, flat)) / power, np.nan)

    if (best := a.peak(anisotropy_on)) is None:
        return None
    return Measured("artificial-noise-uniform-surfaces", best, ramp(best, 0.86, 1.08), a.box(anisotropy_on),
                    f"On a uniform surface the noise runs along one direction: neighbouring pixels' correlation "
                    f"differs by {best:.2f} between rows and columns, streaks or a pattern rather than a camera's "
                    "even grain.")


def _edge_deviation(a: Analysis) -> np.ndarray:
    """Degrees between each pixel's own gradient (which sees stair steps) and the edge's local
    orientation (from smoothed gradients); orientations are modulo 180, so wrapped to [0, 90]."""
    raw_gy, raw_gx = a.pixel_gradient
    pixel = np.arctan2(raw_gy, raw_gx)
    return np.degrees(np.abs((pixel - a.edge_orientation + np.pi / 2) % np.pi - np.pi / 2))


def edge_aliasing(a: Analysis) -> Measured | None:
    """Gradient vs local edge orientation at strong edges; onset 33, full 42 degrees."""
    if a.edges.mean() < 0.002:
        return None
    deviation = _edge_deviation(a)
    edges = a.edges.astype(np.float32)

    def deviation_on(grid: Grid) -> np.ndarray:
        return np.where(grid.mean(edges) > 0.01, grid.mean(deviation, edges), np.nan)

    if (best := a.peak(deviation_on)) is None:
        return None
    return Measured("edge-aliasing", best, ramp(best, 33, 42), a.box(deviation_on),
                    f"Along high-contrast edges pixel gradients deviate {best:.0f} degrees on average from the "
                    "edge's direction: the edges are stair-stepped (aliased) rather than smooth.")


def over_sharpening(a: Analysis) -> Measured | None:
    """Overshoot beyond the smoothed ~9x9 range at edges, / edge contrast; onset 0.8, full 3.5."""
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
    return Measured("over-sharpening", best, ramp(best, 0.8, 3.5), a.box(relative_on),
                    f"Pixels next to edges overshoot the surrounding brightness range by {best:.0%} of the edge's "
                    "contrast on average, the bright/dark halos of strong sharpening.")


def colour_distribution(a: Analysis) -> Measured | None:
    """90th percentile of HSV saturation; onset 0.83, full 0.99."""
    high, low = (c.astype(np.float32) for c in channel_extremes(a.rgb))
    saturation = np.where(high > 0.02 * 255, (high - low) / np.maximum(high, 1.0), np.float32(0))
    p90 = float(np.partition(saturation.ravel(), int(0.9 * (saturation.size - 1)))[int(0.9 * (saturation.size - 1))])
    return Measured("colour-distribution-anomaly", p90, ramp(p90, 0.83, 0.99), a.box(lambda g: g.mean(saturation)),
                    f"Colours are unusually saturated: a tenth of the pixels have saturation above {p90:.2f} "
                    "(9 in 10 photographs stay below 0.83).", extent="image")


def colour_coherence_break(a: Analysis) -> Measured | None:
    """Chroma change where the luma stays smooth, in 1/255 per px; onset 5.6, full 10.6."""
    cb, cr = a.chroma
    # Smoothed chroma: demosaicing and JPEG leave pixel-level chroma noise, the break is larger.
    cb, cr = half_size(cb), half_size(cr)
    chroma_change = a.full_size(np.hypot(*np.gradient(cb)) + np.hypot(*np.gradient(cr))) / 2
    smooth_luma = (a.gradient < EDGE_CONTRAST / 4).astype(np.float32)

    def break_on(grid: Grid) -> np.ndarray:
        return np.where(grid.mean(smooth_luma) > 0.2, grid.mean(chroma_change, smooth_luma) * 255, np.nan)

    if (best := a.peak(break_on)) is None:
        return None
    return Measured("colour-coherence-break", best, ramp(best, 5.6, 10.6), a.box(break_on),
                    f"Colour changes by {best:.1f} levels per pixel where the brightness stays smooth: a colour "
                    "transition with no edge to explain it.")


def chroma_residual(a: Analysis) -> Measured | None:
    """Chroma / luma residual energy; onset 0.33, full 0.6."""
    cb, cr = a.chroma
    energy = high_pass(cb) ** 2 + high_pass(cr) ** 2
    chroma = np.sqrt(a.blocks.mean(energy))
    overall = float(np.sqrt(np.mean(chroma**2)) / (np.sqrt(np.mean(a.detail**2)) + 2e-3))
    return Measured("chrominance-residual-anomaly", overall, ramp(overall, 0.33, 0.6),
                    a.box(lambda g: np.sqrt(g.mean(energy)) / (a.detail_on(g) + 2e-3)),
                    f"The colour channels carry {overall:.2f}x the luma's fine-detail energy; camera demosaicing "
                    "and chroma subsampling usually keep this below 0.33.", extent="image")


def smooth_background(a: Analysis) -> Measured | None:
    """Share of flat (no structure) and almost noiseless blocks; onset 25%, full 50% of the image."""
    def flat_on(grid: Grid) -> np.ndarray:
        return ((a.structure_on(grid) < FLAT_STRUCTURE) & (a.detail_on(grid) < 1.0 / 255)).astype(float)

    share = float(flat_on(a.blocks).mean())
    if share == 0:
        return None
    return Measured("smooth-background", share, ramp(share, 0.25, 0.5), a.box(flat_on),
                    f"{share:.0%} of the image is flat and almost noiseless (fine-detail level under 1 grey level), "
                    "a smooth low-detail background.", extent="image")


MEASURES = (upsampling_parity, grid_pattern, spectral_peaks, over_smoothing, resolution_inconsistency,
            noise_inconsistency, patterned_noise, edge_aliasing, over_sharpening, colour_distribution,
            colour_coherence_break, chroma_residual, smooth_background)


MIN_SIDE = 8  # pixels; smaller images get no measured artifacts
THREADED_PIXELS = 512 * 512  # from this size on, the measures run on several threads


def available_cpus() -> int:
    """CPUs this process may run on (its affinity, which cluster schedulers set), else all."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def measure_artifacts(
    image: np.ndarray | ImageTraces, regions: list[Region] | None = None, *, threads: int | None = None
) -> list[ArtifactFinding]:
    """Findings with score >= MIN_SCORE, in `ranked` order (see the module docstring).

    The measures are independent and their numpy/scipy work releases the GIL, so they run on
    `threads` threads (default: for images of a quarter megapixel or more, the CPUs available, at
    most 4; smaller ones gain less than a pool costs); the findings do not depend on it.
    """
    if min(ImageTraces.of(image).rgb.shape[:2]) < MIN_SIDE:
        return []  # a few pixels carry no local statistics to measure
    taxonomy = load_taxonomy()
    analysis = Analysis(image, regions)
    if threads is None:
        threads = min(4, available_cpus()) if analysis.grey.size >= THREADED_PIXELS else 1
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(lambda measure: measure(analysis), MEASURES))
    else:
        results = [measure(analysis) for measure in MEASURES]
    findings = []
    for measured in results:
        if measured is None or measured.score < MIN_SCORE:
            continue
        kind = taxonomy.get(measured.id)
        findings.append(ArtifactFinding(id=kind.id, name=kind.name, group=kind.group, score=round(measured.score, 3),
                                        evidence="measured", explanation=measured.reason, box=measured.box,
                                        extent=measured.extent))
    return ranked(findings)


def _calibrate(manifest: str, per_label: int = 150) -> None:
    """Print each measure's raw-value percentiles on synthbench train reals and fakes."""
    from synthscan.data.datasets import read_dataset
    from synthscan.io.loading import load_image

    samples = read_dataset(manifest, split="train", track="256")
    rng = np.random.default_rng(0)
    for label in ("real", "fake"):
        chosen = [s for s in samples if s.label == label]
        chosen = [chosen[i] for i in rng.permutation(len(chosen))[:per_label]]
        values: dict[str, list[float]] = {}
        for sample in chosen:
            analysis = Analysis(load_image(sample.path).rgb, None)
            for measure in MEASURES:
                if (measured := measure(analysis)) is not None:
                    values.setdefault(measured.id, []).append(measured.value)
        print(f"{label} (n={len(chosen)}): measure  p50 p90 p99")
        for artifact_id, v in values.items():
            print(f"  {artifact_id:32s} " + " ".join(f"{q:.3f}" for q in np.percentile(v, [50, 90, 99])))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=_calibrate.__doc__)
    parser.add_argument("--calibrate", required=True, help="synthbench manifest.csv")
    _calibrate(parser.parse_args().calibrate)

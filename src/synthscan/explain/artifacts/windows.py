"""The window-sum engine the measured artifacts share: block and sliding-window grids.

Every measure looks at the image through a grid of blocks (about 8 across the short side, at
least 16 px), where it is scored, and through windows of the block's size sliding by a quarter
block, where its box is drawn: the per-window map is thresholded at halfway between the image's
median window and its strongest one, and the connected windows around the strongest (each
standing for the cell around its centre) give the box. A region of any size gets a box of its
size, to about an eighth of a block. `regions` (from an attribution map) break near-ties: windows
inside a region count 25% more.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from synthscan.explain.images import block_means
from synthscan.explain.schema import Box, Region

MIN_BLOCK = 16
BLOCKS_ACROSS = 8  # blocks along the short side
SLIDE = 4  # sliding windows (for boxes) start a quarter of a block apart


def half_size(values: np.ndarray) -> np.ndarray:
    """Means of 2x2 pixel blocks (an odd last row or column is repeated first)."""
    h, w = values.shape
    return block_means(np.pad(values, ((0, h % 2), (0, w % 2)), mode="edge"), 2)


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

"""Texture and forensic-trace features of image tiles, computed for a whole batch at once with torch.

texture-gbm describes every tile by these numbers and lets gradient boosting separate real from
generated tiles. Report 002 names the texture features (GLCM, LBP, HOG, chroma residuals); the
others are classic forensic traces that camera pipelines and generators leave differently:

- `glcm` (12): grey-level co-occurrence contrast, dissimilarity, homogeneity, energy, correlation and
  ASM at distances 1 and 2, averaged over 4 angles (scikit-image's `graycoprops` definitions).
- `lbp` (10 + 18): uniform rotation-invariant local binary pattern histograms at (8, 1) and (16, 2),
  as scikit-image's `local_binary_pattern(method="uniform")`.
- `hog` (18): mean and std, per orientation, of block-normalised gradient-orientation histograms
  (9 unsigned bins, 16-px cells, 2x2-cell blocks, L2 norm).
- `residual` (16): std, mean |r|, skewness, kurtosis, lag-1 autocorrelation of the Y, Cb and Cr
  residuals (value minus the mean of its 8 neighbours) and the Cb-Cr residual correlation.
- `spam` (98) and `chroma_spam` (100): SPAM steganalysis features - the co-occurrence of two
  successive truncated pixel differences, horizontal/vertical and diagonal - of Y (T=3, 2 x 49),
  and of Cb and Cr (T=2, 2 x 2 x 25).
- `grid_phase` (32): energy of first and second differences at each column/row phase modulo 8,
  relative to their mean: the periodic traces of 2x, 4x and 8x up-sampling (and the JPEG grid).
- `spectrum` (25): the Y residual's windowed log power spectrum averaged in 16 radial bands, and the
  height of the spectrum above its surroundings at the 1/2, 1/4 and 3/8-cycle up-sampling positions.
- `colour` (9): saturation mean and spread, clipped-pixel fractions, RGB channel correlations and
  the chroma spread. Generators render colour distributions unlike camera pipelines.

Hand-written in torch, not taken from scikit-image, for speed: scikit-image works one tile at a
time, and the 0.3.0 default model that used it scanned 16 images/s; batched tensor ops and one
`bincount` per histogram bring the default model to 214 images/s on 2 cores
(`benchmarks/throughput.py`, numbers in MODEL_CARD.md). The GLCM and LBP groups are tested
against scikit-image.
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np
import torch
import torch.nn.functional as F

from synthscan.colour import BT601_YCBCR

GLCM_LEVELS = 32
SPAM_DIRECTIONS = {"straight": ((0, 1), (1, 0)), "diagonal": ((1, 1), (1, -1))}
GRID_PERIOD = 8
SPECTRUM_BANDS = 16
# Tiles per pass: a 64-tile chunk of 128-px tiles stays in cache; much larger batches run slower.
CHUNK_TILES = 64
RGB_TO_YCBCR = torch.tensor(BT601_YCBCR, dtype=torch.float32)


def _bincount_per_tile(index: torch.Tensor, bins: int, weights: torch.Tensor | None = None) -> torch.Tensor:
    """(N, ...) integer bins -> (N, bins) counts (or weight sums), one `bincount` for the batch."""
    n = index.shape[0]
    offset = torch.arange(n).view(-1, *[1] * (index.dim() - 1)) * bins
    flat_weights = None if weights is None else weights.reshape(-1).double()
    return torch.bincount((index + offset).reshape(-1), flat_weights, minlength=n * bins).view(n, bins).double()


def _pairs(x: torch.Tensor, dy: int, dx: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x[i, j], x[i + dy, j + dx]) over every position where both exist (last two dims)."""
    h, w = x.shape[-2:]
    top, left = max(0, -dy), max(0, -dx)
    rows, cols = h - abs(dy), w - abs(dx)
    return (x[..., top : top + rows, left : left + cols],
            x[..., top + dy : top + dy + rows, left + dx : left + dx + cols])


class TileBatch:
    """Tiles and the intermediate images several feature groups share, each computed once."""

    def __init__(self, rgb: torch.Tensor):
        self.rgb = rgb  # (N, 3, H, W) float, integer values 0..255

    @classmethod
    def from_uint8(cls, tiles: np.ndarray) -> TileBatch:
        """(N, H, W, 3) uint8, as `make_tiles` crops them."""
        return cls(torch.from_numpy(np.ascontiguousarray(tiles)).permute(0, 3, 1, 2).float())

    @classmethod
    def from_unit_tensor(cls, x: torch.Tensor) -> TileBatch:
        """(N, 3, H, W) float in [0, 1], as detectors receive tiles; the same values as from_uint8."""
        return cls((x.float() * 255).round().clamp(0, 255))

    @cached_property
    def ycbcr(self) -> torch.Tensor:
        return torch.einsum("ck,nkhw->nchw", RGB_TO_YCBCR, self.rgb)

    @cached_property
    def grey(self) -> torch.Tensor:
        return self.ycbcr[:, 0]

    @cached_property
    def grey_u8(self) -> torch.Tensor:
        return self.grey.round().clamp(0, 255)

    @cached_property
    def residual(self) -> torch.Tensor:
        """Value minus the mean of its 8 neighbours, per YCbCr channel: what interpolation cannot predict."""
        # Separable 3x3 box sum on a reflect-padded copy: faster than a grouped conv2d on CPU.
        padded = F.pad(self.ycbcr, (1, 1, 1, 1), mode="reflect")
        rows = padded[..., :-2] + padded[..., 1:-1]
        rows += padded[..., 2:]
        box = rows[..., :-2, :] + rows[..., 1:-1, :]
        box += rows[..., 2:, :]
        return box.mul_(-1 / 8).add_(self.ycbcr, alpha=9 / 8)  # (9 x - box) / 8, in place


def glcm(batch: TileBatch) -> torch.Tensor:
    levels = GLCM_LEVELS
    q = (batch.grey_u8 // (256 // levels)).long()
    # scikit-image's offsets: (round(sin(angle) * d), round(cos(angle) * d)).
    offsets = [(round(math.sin(a) * d), round(math.cos(a) * d)) for d in (1, 2) for a in (0, math.pi / 4, math.pi / 2, 3 * math.pi / 4)]
    counts = []
    for dy, dx in offsets:
        a, b = _pairs(q, dy, dx)
        counts.append(_bincount_per_tile(a * levels + b, levels * levels).view(-1, levels, levels))
    p = torch.stack(counts, 1)  # (N, 8 offsets, L, L)
    p = p + p.transpose(-1, -2)  # symmetric
    p = p / p.sum((-1, -2), keepdim=True)
    i = torch.arange(levels, dtype=torch.float64).view(-1, 1)
    j = i.view(1, -1)
    mean_i, mean_j = (p * i).sum((-1, -2), keepdim=True), (p * j).sum((-1, -2), keepdim=True)
    std_i = (p * (i - mean_i) ** 2).sum((-1, -2)).sqrt()
    std_j = (p * (j - mean_j) ** 2).sum((-1, -2)).sqrt()
    cov = (p * (i - mean_i) * (j - mean_j)).sum((-1, -2))
    asm = (p ** 2).sum((-1, -2))
    props = [
        (p * (i - j) ** 2).sum((-1, -2)),  # contrast
        (p * (i - j).abs()).sum((-1, -2)),  # dissimilarity
        (p / (1 + (i - j) ** 2)).sum((-1, -2)),  # homogeneity
        asm.sqrt(),  # energy
        torch.where((std_i > 1e-9) & (std_j > 1e-9), cov / (std_i * std_j).clamp_min(1e-12), torch.ones_like(cov)),
        asm,
    ]
    # (N, 8) each: offsets are distance-major, so the mean over each half is the mean over angles.
    return torch.cat([prop.view(-1, 2, 4).mean(-1) for prop in props], -1)


def _lbp_histogram(grey: torch.Tensor, points: int, radius: float) -> torch.Tensor:
    """Uniform rotation-invariant LBP codes (bilinear samples on the circle), histogram per tile."""
    r = math.ceil(radius)
    h, w = grey.shape[-2:]
    centre = grey[..., r : h - r, r : w - r]
    ones = torch.zeros(centre.shape, dtype=torch.uint8)
    transitions = torch.zeros_like(ones)
    first = previous = None
    for p in range(points):
        dy = round(-radius * math.sin(2 * math.pi * p / points), 6)
        dx = round(radius * math.cos(2 * math.pi * p / points), 6)
        y0, x0 = math.floor(dy), math.floor(dx)
        fy, fx = dy - y0, dx - x0

        def at(oy: int, ox: int) -> torch.Tensor:
            return grey[..., r + oy : h - r + oy, r + ox : w - r + ox]

        if fy == 0 and fx == 0:
            sample = at(y0, x0)
        else:
            sample = ((1 - fy) * (1 - fx)) * at(y0, x0) + ((1 - fy) * fx) * at(y0, x0 + 1) \
                + (fy * (1 - fx)) * at(y0 + 1, x0) + (fy * fx) * at(y0 + 1, x0 + 1)
        bit = sample >= centre - 1e-4  # tolerance: bilinear weights do not sum exactly to 1 in float32
        ones += bit
        if previous is None:
            first = bit
        else:
            transitions += bit != previous
        previous = bit
    transitions += previous != first
    code = torch.where(transitions <= 2, ones, torch.full_like(ones, points + 1)).long()
    return _bincount_per_tile(code, points + 2) / code[0].numel()


def lbp(batch: TileBatch) -> torch.Tensor:
    return torch.cat([_lbp_histogram(batch.grey_u8, 8, 1), _lbp_histogram(batch.grey_u8, 16, 2)], -1)


def hog(batch: TileBatch, cell: int = 16, bins: int = 9) -> torch.Tensor:
    grey = batch.grey
    n, h, w = grey.shape
    gy, gx = torch.zeros_like(grey), torch.zeros_like(grey)
    gy[:, 1:-1] = grey[:, 2:] - grey[:, :-2]
    gx[:, :, 1:-1] = grey[:, :, 2:] - grey[:, :, :-2]
    orientation = (torch.rad2deg(torch.atan2(gy, gx)) % 180 / (180 / bins)).long().clamp_max(bins - 1)
    rows, cols = h // cell, w // cell
    cell_index = (torch.arange(h).view(-1, 1) // cell).clamp_max(rows - 1) * cols + (torch.arange(w) // cell).clamp_max(cols - 1)
    hist = _bincount_per_tile(cell_index * bins + orientation, rows * cols * bins, torch.hypot(gx, gy))
    cells = hist.view(n, rows, cols, bins)
    blocks = torch.cat([cells[:, :-1, :-1], cells[:, 1:, :-1], cells[:, :-1, 1:], cells[:, 1:, 1:]], -1)  # 2x2 cells
    blocks = blocks / blocks.pow(2).sum(-1, keepdim=True).add(1e-10).sqrt()
    per_orientation = blocks.reshape(n, -1, bins)  # every (block, cell) histogram
    return torch.cat([per_orientation.mean(1), per_orientation.std(1)], -1)


def _moments(r: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C * 5): std, mean |r|, skewness, kurtosis, lag-1 (horizontal) autocorrelation."""
    flat = r.flatten(2)
    # Central moments from raw power sums: one pass per power instead of one per statistic.
    square = flat * flat
    m1, m2, m3, m4 = flat.mean(-1), square.mean(-1), (square * flat).mean(-1), (square * square).mean(-1)
    var = (m2 - m1 ** 2).clamp_min(0)
    std = var.sqrt()
    skew = (m3 - 3 * m1 * m2 + 2 * m1 ** 3) / std.clamp_min(1e-6) ** 3
    kurtosis = (m4 - 4 * m1 * m3 + 6 * m1 ** 2 * m2 - 3 * m1 ** 4) / var.clamp_min(1e-12) ** 2 - 3
    left, right = _pairs(r, 0, 1)
    lag1 = ((left * right).mean((-1, -2)) - m1 ** 2) / var.clamp_min(1e-9)  # whole-tile mean and variance
    return torch.stack([std, flat.abs().mean(-1), skew, kurtosis, lag1], -1).flatten(1)


def residual(batch: TileBatch) -> torch.Tensor:
    res = batch.residual
    cb, cr = res[:, 1].flatten(1), res[:, 2].flatten(1)
    cb, cr = cb - cb.mean(-1, keepdim=True), cr - cr.mean(-1, keepdim=True)
    cross = (cb * cr).mean(-1) / (cb.pow(2).mean(-1) * cr.pow(2).mean(-1)).sqrt().clamp_min(1e-9)
    return torch.cat([_moments(res), cross.unsqueeze(-1)], -1)


def _spam(x: torch.Tensor, truncation: int, directions: tuple[str, ...]) -> torch.Tensor:
    """Second-order SPAM: co-occurrence of successive truncated differences (d_i, d_{i+1}) along each
    direction, both ways, normalised; one (2T+1)^2 histogram per direction group."""
    size = 2 * truncation + 1
    # Bin index in float (small exact integers), converted to int64 once: int64 passes are slow.
    base = torch.arange(len(x), dtype=x.dtype).view(-1, 1, 1) * size * size + truncation * (size + 1)
    out = []
    for group in directions:
        hist = 0
        for dy, dx in SPAM_DIRECTIONS[group]:
            a, b = _pairs(x, dy, dx)
            d = (b - a).round_().clamp_(-truncation, truncation)
            first, second = _pairs(d, dy, dx)
            index = torch.add(second, first, alpha=size).add_(base).long()
            forward = torch.bincount(index.flatten(), minlength=len(x) * size * size).view(-1, size, size).double()
            # The opposite direction sees the pair reversed and negated: (-d_{i+1}, -d_i).
            hist = hist + forward + forward.flip(-1, -2).transpose(-1, -2)
        out.append((hist / hist.sum((-1, -2), keepdim=True)).flatten(1))
    return torch.cat(out, -1)


def spam(batch: TileBatch) -> torch.Tensor:
    return _spam(batch.grey, 3, ("straight", "diagonal"))


def chroma_spam(batch: TileBatch) -> torch.Tensor:
    return torch.cat([_spam(batch.ycbcr[:, c], 2, ("straight", "diagonal")) for c in (1, 2)], -1)


def grid_phase(batch: TileBatch) -> torch.Tensor:
    x = batch.grey
    out = []
    for along_rows in (False, True):
        xs = x.transpose(-1, -2) if along_rows else x
        for diff in (xs[..., 1:] - xs[..., :-1], xs[..., 2:] - 2 * xs[..., 1:-1] + xs[..., :-2]):
            energy = diff.abs().mean(-2)  # per column
            usable = energy.shape[-1] // GRID_PERIOD * GRID_PERIOD
            phase = energy[..., :usable].reshape(len(x), -1, GRID_PERIOD).mean(1)
            out.append(phase / phase.mean(-1, keepdim=True).clamp_min(1e-9))
    return torch.cat(out, -1)


def spectrum(batch: TileBatch) -> torch.Tensor:
    res = batch.residual[:, 0]
    n, h, w = res.shape
    window = torch.outer(torch.hann_window(h, periodic=False), torch.hann_window(w, periodic=False))
    power = torch.fft.fftshift(torch.fft.fft2(res * window).abs().pow(2).add(1e-8).log(), dim=(-2, -1))
    fy = (torch.arange(h) - h // 2).float().view(-1, 1) / (h / 2)
    fx = (torch.arange(w) - w // 2).float().view(1, -1) / (w / 2)
    band = ((fy ** 2 + fx ** 2).sqrt() * SPECTRUM_BANDS).long().clamp_max(SPECTRUM_BANDS)  # last: the corners
    members = F.one_hot(band.flatten(), SPECTRUM_BANDS + 1)[:, :SPECTRUM_BANDS].float()
    profile = power.flatten(1) @ members / members.sum(0)
    profile = profile - profile.mean(-1, keepdim=True)  # shape, not overall noise level

    def peak(y: int, x: int) -> torch.Tensor:
        around = power[:, max(0, y - 2) : y + 3, max(0, x - 2) : x + 3].flatten(1).median(-1).values
        return power[:, y, x] - around

    cy, cx = h // 2, w // 2  # the zero frequency after fftshift; index 0 is the Nyquist frequency
    positions = [(cy, 0), (0, cx), (0, 0), (cy, cx // 2), (cy // 2, cx), (cy, cx + cx // 2), (cy + cy // 2, cx),
                 (cy, cx + 3 * cx // 4), (cy + 3 * cy // 4, cx)]
    return torch.cat([profile, torch.stack([peak(y, x) for y, x in positions], -1)], -1)


def colour(batch: TileBatch) -> torch.Tensor:
    r, g, b = batch.rgb.flatten(2).unbind(1)
    brightest, darkest = torch.maximum(torch.maximum(r, g), b), torch.minimum(torch.minimum(r, g), b)
    saturation = (brightest - darkest) / brightest.clamp_min(1)
    means = [c.mean(-1) for c in (r, g, b)]
    spreads = [((c * c).mean(-1) - m ** 2).clamp_min(1e-6).sqrt() for c, m in zip((r, g, b), means)]

    def correlation(i: int, j: int, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return ((a * b).mean(-1) - means[i] * means[j]) / (spreads[i] * spreads[j])

    chroma = batch.ycbcr[:, 1:].flatten(2).std(-1)
    return torch.cat([torch.stack([saturation.mean(-1), saturation.std(-1), (brightest >= 254).float().mean(-1),
                                   (darkest <= 1).float().mean(-1), correlation(0, 1, r, g), correlation(0, 2, r, b),
                                   correlation(1, 2, g, b)], -1), chroma], -1)


FEATURE_GROUPS = {"glcm": glcm, "lbp": lbp, "hog": hog, "residual": residual, "spam": spam,
                  "chroma_spam": chroma_spam, "grid_phase": grid_phase, "spectrum": spectrum, "colour": colour}


def tile_features(tiles: np.ndarray | torch.Tensor, groups: tuple[str, ...] | list[str],
                  chunk: int = CHUNK_TILES) -> np.ndarray:
    """Tiles -> (N, D) float64 features, groups in the order given. Tiles are (N, H, W, 3) uint8
    or (N, 3, H, W) floats in [0, 1], with H, W >= 32."""
    unknown = set(groups) - FEATURE_GROUPS.keys()
    if unknown:
        raise ValueError(f"unknown feature group(s) {sorted(unknown)}; known: {list(FEATURE_GROUPS)}")
    make = TileBatch.from_unit_tensor if isinstance(tiles, torch.Tensor) else TileBatch.from_uint8
    out = []
    with torch.no_grad():
        for start in range(0, len(tiles), chunk):
            batch = make(tiles[start : start + chunk])
            out.append(torch.cat([FEATURE_GROUPS[g](batch).double() for g in groups], -1))
    return torch.cat(out).numpy() if out else np.zeros((0, 0))

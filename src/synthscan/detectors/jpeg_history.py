"""Has an image been saved as JPEG before, and at what quality? Read from its pixels alone.

A JPEG stores each 8x8 block's DCT coefficients divided by a quantisation step and rounded, so
after decoding, the coefficient at one frequency sits on a lattice of multiples of that step
(plus about a third of a level of rounding noise). For a few low frequencies the step is found as
the largest one whose lattice the coefficients fit (mean distance to it under `LATTICE_FIT` of
the step and under `NOISE` levels, where unquantised values give a quarter step), and the IJG
quality whose table has the nearest steps is the estimate (the lattice-period estimate of Fan and
de Queiroz, 2003). A PNG, a WebP, or a JPEG resized or cropped off its 8-pixel grid since its
last save shows no lattice: the answer is None. So does a JPEG saved at quality 96 or more, whose
steps at these frequencies are all 1.

Why the scorer wants it: JPEG re-compression moves a detector's scores for fakes towards "real"
far more than for real photos (the 1.0.0 default, on the val split under the `social` chain:
fakes called fake 0.864 -> 0.354, reals called real 0.995 -> 1.000), so a re-posted fake is
mostly called real. A model whose `ModelInfo.recompressed` names a head trained on re-compressed
copies sends the images last saved below that route's quality there (`Scorer.score_many`).

Hand-written on numpy/scipy (no maintained Python package estimates JPEG quality from pixels;
jpegio reads the tables from the file, which a decoded or perturbed array no longer has).
Pillow's encoder uses the IJG tables; cameras and apps with their own tables get the nearest IJG
quality.
"""

from __future__ import annotations

import numpy as np
from scipy.fft import dctn

CROP = 512  # a centre crop on the 8-pixel grid: enough blocks, bounded cost on large photos
LATTICE_FIT = 0.2  # mean |distance to the lattice| / step below which a step is accepted ...
NOISE = 0.6  # ... and in levels: decoding's rounding moves a coefficient by about 0.3
MIN_COEFFICIENTS = 40  # non-zero coefficients needed to judge a step
MAX_STEP = 64
STEPS = np.arange(2, MAX_STEP + 1, dtype=np.float32)[:, None]  # the candidate steps, a column
# The IJG (libjpeg) luminance table: (row, column) -> step at quality 50.
IJG_LUMA = np.array([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55], [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62], [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99],
])  # fmt: skip
POSITIONS = ((0, 1), (1, 0), (1, 1), (0, 2), (2, 0), (1, 2), (2, 1), (2, 2))  # low AC frequencies: most non-zero


def ijg_steps(quality: int) -> np.ndarray:
    """libjpeg's luminance steps at `quality` (1..100), for `POSITIONS`."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    table = np.clip((IJG_LUMA * scale + 50) // 100, 1, 255)
    return np.array([table[p] for p in POSITIONS])


IJG_STEPS = {q: ijg_steps(q) for q in range(1, 101)}


def block_dct(rgb: np.ndarray) -> np.ndarray:
    """(blocks, 8, 8) DCT coefficients of the luminance (JPEG's YCbCr Y, minus 128) of a centre crop
    aligned to the 8-pixel grid, leaving out blocks with a clipped (0 or 255) channel."""
    h, w = rgb.shape[:2]
    top, left = (max(0, (h - CROP) // 2) // 8) * 8, (max(0, (w - CROP) // 2) // 8) * 8
    crop = rgb[top : top + min(h, CROP), left : left + min(w, CROP)]
    h8, w8 = (crop.shape[0] // 8) * 8, (crop.shape[1] // 8) * 8
    crop = crop[:h8, :w8]
    luma = crop.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) - 128
    blocks = luma.reshape(h8 // 8, 8, w8 // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8)
    # Decoding clips to 0..255, which moves a block's coefficients off the lattice: skip such blocks.
    clipped = ((crop == 0) | (crop == 255)).any(axis=2).reshape(h8 // 8, 8, w8 // 8, 8).any(axis=(1, 3)).reshape(-1)
    return dctn(blocks[~clipped], axes=(1, 2), norm="ortho")  # JPEG's DCT is the orthonormal one


def lattice_step(values: np.ndarray) -> int | None:
    """The largest step (2..MAX_STEP) on whose multiples these coefficients' non-zero values all
    sit; 1 when no step fits, None when too few are non-zero to tell. Sitting on a lattice means a
    mean distance to it of rounding noise (`NOISE` levels, whatever the step), and under a fifth of
    the step where that is tighter (step 2): values off a lattice are a quarter step away on average."""
    nonzero = values[np.abs(values) >= 1]  # a zero level decodes to within about 0.5 of zero
    if len(nonzero) < MIN_COEFFICIENTS:
        return None
    distance = np.abs(nonzero - STEPS * np.round(nonzero / STEPS)).mean(axis=1)
    fits = np.flatnonzero(distance < np.minimum(LATTICE_FIT * STEPS[:, 0], NOISE))
    return int(fits[-1]) + 2 if len(fits) else 1


def estimate_jpeg_quality(rgb: np.ndarray) -> int | None:
    """The IJG quality (1..95) this (H, W, 3) uint8 image was last JPEG-saved at, or None when it
    shows no JPEG lattice on its 8-pixel grid (never JPEG, JPEG 96+, or resized/cropped since)."""
    if min(rgb.shape[:2]) < 64:
        return None
    coefficients = block_dct(rgb)
    found = [lattice_step(coefficients[:, r, c]) for r, c in POSITIONS]
    known = np.array([s is not None for s in found])
    steps = np.array([s or 1 for s in found])
    if not known.any() or (steps[known] == 1).all():
        return None
    # The quality whose steps are nearest (in log steps, so a 2-vs-3 miss counts like 20-vs-30).
    error = {q: float(np.abs(np.log(t[known]) - np.log(steps[known])).sum()) for q, t in IJG_STEPS.items()}
    return min(error, key=lambda q: (error[q], -q))

"""Measures of noise: uneven noise level, and noise running along one direction on uniform surfaces."""

from __future__ import annotations

import numpy as np

from synthscan.explain.artifacts.analysis import UNIFORM_STRUCTURE, Analysis, Measured
from synthscan.explain.artifacts.windows import Grid


def noise_inconsistency(a: Analysis) -> Measured | None:
    """Block noise (mean |residual| off edges) vs median."""
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
    return Measured.of("random-noise-detailed-areas", best, a.box(octaves_on),
                    f"One region's noise is {2 ** best:.1f}x {word} than the image's typical noise "
                    f"({noise[peak] * 255:.1f} vs {typical * 255:.1f} grey levels), unlike a single camera sensor.")


def patterned_noise(a: Analysis) -> Measured | None:
    """Direction of the noise on uniform surfaces: |lag-1 correlation along x - along y| of the
    residual (camera grain is about as correlated both ways)."""
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
    return Measured.of("artificial-noise-uniform-surfaces", best, a.box(anisotropy_on),
                    f"On a uniform surface the noise runs along one direction: neighbouring pixels' correlation "
                    f"differs by {best:.2f} between rows and columns, streaks or a pattern rather than a camera's "
                    "even grain.")

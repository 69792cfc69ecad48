"""Measures of colour and flatness: saturation, colour changes without an edge, chroma residual
and smooth backgrounds."""

from __future__ import annotations

import numpy as np

from synthscan.explain.artifacts.analysis import EDGE_CONTRAST, FLAT_STRUCTURE, Analysis, Measured, threshold
from synthscan.explain.artifacts.windows import Grid, half_size
from synthscan.explain.traces import channel_extremes, high_pass


def colour_distribution(a: Analysis) -> Measured | None:
    """90th percentile of HSV saturation."""
    high, low = (c.astype(np.float32) for c in channel_extremes(a.rgb))
    saturation = np.where(high > 0.02 * 255, (high - low) / np.maximum(high, 1.0), np.float32(0))
    p90 = float(np.partition(saturation.ravel(), int(0.9 * (saturation.size - 1)))[int(0.9 * (saturation.size - 1))])
    return Measured.of("colour-distribution-anomaly", p90, a.box(lambda g: g.mean(saturation)),
                    f"Colours are unusually saturated: a tenth of the pixels have saturation above {p90:.2f} "
                    f"(9 in 10 photographs stay below {threshold('colour-distribution-anomaly').onset:.2f}).", extent="image")


def colour_coherence_break(a: Analysis) -> Measured | None:
    """Chroma change where the luma stays smooth, in 1/255 per px."""
    cb, cr = a.chroma
    # Smoothed chroma: demosaicing and JPEG leave pixel-level chroma noise, the break is larger.
    cb, cr = half_size(cb), half_size(cr)
    chroma_change = a.full_size(np.hypot(*np.gradient(cb)) + np.hypot(*np.gradient(cr))) / 2
    smooth_luma = (a.gradient < EDGE_CONTRAST / 4).astype(np.float32)

    def break_on(grid: Grid) -> np.ndarray:
        return np.where(grid.mean(smooth_luma) > 0.2, grid.mean(chroma_change, smooth_luma) * 255, np.nan)

    if (best := a.peak(break_on)) is None:
        return None
    return Measured.of("colour-coherence-break", best, a.box(break_on),
                    f"Colour changes by {best:.1f} levels per pixel where the brightness stays smooth: a colour "
                    "transition with no edge to explain it.")


def chroma_residual(a: Analysis) -> Measured | None:
    """Chroma / luma residual energy"""
    cb, cr = a.chroma
    energy = high_pass(cb) ** 2 + high_pass(cr) ** 2
    chroma = np.sqrt(a.blocks.mean(energy))
    overall = float(np.sqrt(np.mean(chroma**2)) / (np.sqrt(np.mean(a.detail**2)) + 2e-3))
    return Measured.of("chrominance-residual-anomaly", overall, a.box(lambda g: np.sqrt(g.mean(energy)) / (a.detail_on(g) + 2e-3)),
                    f"The colour channels carry {overall:.2f}x the luma's fine-detail energy; camera demosaicing "
                    f"and chroma subsampling usually keep this below {threshold('chrominance-residual-anomaly').onset:.2f}.",
                       extent="image")


def smooth_background(a: Analysis) -> Measured | None:
    """Share of flat (no structure) and almost noiseless blocks."""
    def flat_on(grid: Grid) -> np.ndarray:
        return ((a.structure_on(grid) < FLAT_STRUCTURE) & (a.detail_on(grid) < 1.0 / 255)).astype(float)

    share = float(flat_on(a.blocks).mean())
    if share == 0:
        return None
    return Measured.of("smooth-background", share, a.box(flat_on),
                    f"{share:.0%} of the image is flat and almost noiseless (fine-detail level under 1 grey level), "
                    "a smooth low-detail background.", extent="image")

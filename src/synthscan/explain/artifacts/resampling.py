"""Measures of resampling: up-sampling parity, period-2 grids, spectral peaks, over-smoothing and
uneven resolution (see the package docstring for what each measures)."""

from __future__ import annotations

import numpy as np
from synthscan.explain.artifacts.analysis import Analysis, Measured, threshold
from synthscan.explain.artifacts.windows import Grid

PARITY_ORDERS = (1, 3)  # difference orders of the up-sampling parity test (nearest, linear)


def upsampling_parity(a: Analysis) -> Measured | None:
    """Parity of neighbour differences (uniform random pixels: ~0.02)."""
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
    share = float(np.nanmean(parity > threshold("upsampling-pixel-correlation").onset))
    return Measured.of("upsampling-pixel-correlation", best, a.box(parity_on),
                    f"Neighbouring-pixel differences alternate small/large with a 2 px period (parity {best:.2f}, "
                    f"0 for camera-like pixels) over {share:.0%} of the image, as after nearest-style up-sampling.")


def grid_pattern(a: Analysis) -> Measured | None:
    """Period-2 grid coherent across a region of the residual."""
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
    return Measured.of("grid-checkerboard-pattern", best, a.box(strength_on),
                    f"The fine detail carries a regular 2-pixel grid or checkerboard: {best:.0%} of it follows one "
                    f"fixed pattern in a region (9 in 10 photographs stay below {threshold('grid-checkerboard-pattern').onset:.0%}).")


def spectral_peaks(a: Analysis) -> Measured | None:
    """Strongest residual-spectrum peak."""
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
    return Measured.of("spectral-periodic-peaks", strength, a.box(local_on),
                    f"The noise residual's spectrum has {len(peaks)} isolated periodic peak(s); the strongest, at "
                    f"({fy:.3f}, {fx:.3f}) cycles/pixel (period {period:.1f} px), stands {np.exp(strength):.1f}x above "
                    f"its surroundings{jpeg_note}.")


def over_smoothing(a: Analysis) -> Measured | None:
    """Octave-ratio drop below the image's median."""
    ratio = a.octave_ratio_on(a.blocks)
    if np.isfinite(ratio).sum() < 4:
        return None
    typical = float(np.nanmedian(ratio))

    def drop_on(grid: Grid) -> np.ndarray:
        return 1 - a.octave_ratio_on(grid) / typical

    best = float(np.nanmax(drop_on(a.blocks)))
    return Measured.of("over-smoothing", best, a.box(drop_on),
                    f"A region has {best:.0%} less of the finest detail (above 1/4 cycle/pixel), relative to the "
                    "detail just coarser, than the rest of the image, as if it had been smoothed or up-sampled.")


def resolution_inconsistency(a: Analysis) -> Measured | None:
    """log2(p90 / p10) of the octave ratio over blocks."""
    ratio = a.octave_ratio_on(a.blocks)
    ratio = ratio[np.isfinite(ratio)]
    if len(ratio) < 6:
        return None
    p10, p90 = np.percentile(ratio, [10, 90])
    spread = float(np.log2(p90 / max(p10, 1e-6)))

    def blurriness_on(grid: Grid) -> np.ndarray:
        return -np.log2(np.maximum(a.octave_ratio_on(grid), 1e-6) / p90)

    return Measured.of("resolution-inconsistency", spread, a.box(blurriness_on),
                    f"Sharpness varies {2 ** spread:.1f}x between the sharpest and the blurriest regions; "
                    "the box marks the blurriest, as if rendered at a lower resolution.")

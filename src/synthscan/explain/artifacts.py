"""Measured artifacts: the taxonomy's pixel-measurable (M) entries, each with score, box and reason.

Every measure looks at the image through a grid of blocks (about 8 across the short side,
at least 16 px) and reports:
- a score in 0..1: `ramp(measurement, onset, full)`, i.e. 0 at or below `onset`, 1 at or above
  `full`, linear between (the onsets and fulls are in `MEASURES`'s docstrings and constants);
- the box where it is strongest: the connected group of blocks around the strongest block whose
  value is at least halfway between the median block and the strongest one;
- a one-sentence reason quoting the measurement.
Only findings with score >= MIN_SCORE are returned, strongest first. `regions` (from Grad-CAM)
break near-ties when choosing the box: blocks inside a region count 25% more there.

Measures (grey = BT.601 luma in 0..1, residual = grey minus its Gaussian blur, sigma 1 px):
- upsampling-pixel-correlation: nearest-style up-sampling makes pixel pairs inside 2x2 blocks
  equal, so neighbour differences alternate small/large column by column (and row by row).
  Measured per block as |mean |d| at even - odd positions| / mean |d| ("parity", 0..1).
- spectral-periodic-peaks: the strongest isolated peak of the residual spectrum (`traces`),
  located by the local Fourier coefficient of the residual at that frequency.
- over-smoothing: textured blocks whose fine detail (residual std) is low relative to their
  structure (std of a sigma-2 band-pass); measured as the drop below the image's median ratio.
- resolution-inconsistency: spread of that detail ratio between the sharpest and blurriest
  textured blocks (log2 of the 90th / 10th percentile).
- random-noise-detailed-areas: noise level per block (mean |residual| away from edges);
  the largest deviation from the image's median noise, in octaves (log2 ratio).
- edge-aliasing: at strong edges, the mean angle between each pixel's gradient and the
  local (5x5 structure tensor) edge orientation; stair-stepped edges reach 20-45 degrees.
- over-sharpening: at strong edges, how far the pixels overshoot the range of their smoothed
  9x9 neighbourhood, as a fraction of the edge's contrast (halos of unsharp masking).
- colour-distribution-anomaly: the 90th percentile of HSV saturation.
- chrominance-residual-anomaly: high-pass energy of the chroma channels (Cb, Cr) relative to
  the luma's; demosaicing and JPEG chroma subsampling keep it low in camera images.
- smooth-background: the share of the image in flat, almost noiseless blocks.
Onsets sit near the 90th percentile and fulls near the 99th percentile of each raw value over
150 synthbench train real photos (256 track), so about 1 photo in 10 crosses each onset. Those
percentiles, for reals and for fakes, are printed by
`python -m synthscan.explain.artifacts --calibrate ../shared/synthbench/manifest.csv`: on that
set the fakes' distributions are close to the reals' (only saturation and the spectral peaks
shift noticeably), so these measures describe an image; they do not detect generation. They are
observations for a person (or a language model) to weigh, next to the detector's verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from synthscan.explain.schema import ArtifactFinding, Box, Region
from synthscan.explain.taxonomy import load_taxonomy
from synthscan.explain.traces import ImageTraces, high_pass, to_float

MIN_SCORE = 0.25
MIN_BLOCK = 16
BLOCKS_ACROSS = 8  # blocks along the short side
EDGE_CONTRAST = 0.08  # gradient magnitude (0..1 per pixel, Sobel / 8) that makes a pixel an "edge"
TEXTURE_STD = 0.02  # band-pass std above which a block counts as textured


def ramp(value: float, onset: float, full: float) -> float:
    return float(np.clip((value - onset) / (full - onset), 0.0, 1.0))


@dataclass
class Blocks:
    """A partition of the image into ny x nx nearly equal blocks, and block-wise means."""

    ys: np.ndarray  # row starts
    xs: np.ndarray  # column starts
    shape: tuple[int, int]  # image (H, W)

    @classmethod
    def cover(cls, shape: tuple[int, int]) -> Blocks:
        side = max(MIN_BLOCK, min(shape) // BLOCKS_ACROSS)
        ys = np.linspace(0, shape[0], max(1, round(shape[0] / side)) + 1).round().astype(int)[:-1]
        xs = np.linspace(0, shape[1], max(1, round(shape[1] / side)) + 1).round().astype(int)[:-1]
        return cls(ys, xs, shape)

    def mean(self, values: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Mean of `values` per block (weighted; NaN where a block's weights sum to 0)."""
        values = self._fit(values)
        if weights is None:
            heights, widths = np.diff(np.append(self.ys, self.shape[0])), np.diff(np.append(self.xs, self.shape[1]))
            counts = np.outer(heights, widths).astype(np.float64)
        else:
            weights = self._fit(weights)
            values = values * weights
            counts = np.add.reduceat(np.add.reduceat(weights, self.ys, axis=0), self.xs, axis=1)
        sums = np.add.reduceat(np.add.reduceat(values, self.ys, axis=0), self.xs, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, sums / counts, np.nan)

    def _fit(self, a: np.ndarray) -> np.ndarray:
        """Pad maps that are a pixel short (differences) by repeating their last row/column."""
        a = a.astype(np.float32, copy=False)
        if a.shape == self.shape:
            return a
        pad = ((0, self.shape[0] - a.shape[0]), (0, self.shape[1] - a.shape[1]))
        return np.pad(a, pad, mode="edge")

    def box(self, block_values: np.ndarray, regions: list[Region] | None = None) -> Box:
        """Pixel box of the connected blocks around the strongest one (see module docstring)."""
        values = np.nan_to_num(block_values, nan=np.nanmin(block_values) if np.isfinite(block_values).any() else 0.0)
        if regions:
            values = values * (1 + 0.25 * self._inside(regions))
        peak = np.unravel_index(np.argmax(values), values.shape)
        level = np.median(values) + 0.5 * (values[peak] - np.median(values))
        labels, _ = ndimage.label(values >= level)
        rows, cols = np.nonzero(labels == labels[peak])
        y_ends = np.append(self.ys[1:], self.shape[0])
        x_ends = np.append(self.xs[1:], self.shape[1])
        return (int(self.xs[cols.min()]), int(self.ys[rows.min()]), int(x_ends[cols.max()]), int(y_ends[rows.max()]))

    def _inside(self, regions: list[Region]) -> np.ndarray:
        cy = (self.ys + np.append(self.ys[1:], self.shape[0])) / 2
        cx = (self.xs + np.append(self.xs[1:], self.shape[1])) / 2
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


class Analysis:
    """The image's shared intermediate maps, computed once for all measures."""

    def __init__(self, rgb: np.ndarray | ImageTraces, regions: list[Region] | None):
        self.traces = ImageTraces.of(rgb)  # the explainer passes the one it shares with the trace views
        self.rgb = self.traces.rgb
        self.regions = regions
        self.grey = self.traces.grey
        self.blocks = Blocks.cover(self.grey.shape)
        smooth = self.traces.blurred
        self.residual = self.traces.high_pass
        self.gy = ndimage.sobel(smooth, axis=0) / 8
        self.gx = ndimage.sobel(smooth, axis=1) / 8
        self.gradient = np.hypot(self.gx, self.gy)
        self.edges = self.gradient > EDGE_CONTRAST
        # Structure: the band between sigma 2 and sigma 6 (detail of ~10-40 px, which a smoothing
        # that erases fine detail keeps), computed at half resolution: 4x cheaper, same band.
        half = ndimage.zoom(self.grey, 0.5, order=1)
        band = ndimage.gaussian_filter(half, 1.0) - ndimage.gaussian_filter(half, 3.0)
        band = np.repeat(np.repeat(band, 2, axis=0), 2, axis=1)[: self.grey.shape[0], : self.grey.shape[1]]
        self.detail = np.sqrt(self.blocks.mean(self.residual**2))
        self.structure = np.sqrt(self.blocks.mean(band**2))

    def box(self, block_values: np.ndarray) -> Box:
        return self.blocks.box(block_values, self.regions)


def upsampling_parity(a: Analysis) -> Measured | None:
    """Parity of neighbour differences; onset 0.25, full 0.6 (uniform random pixels: ~0.02)."""
    parities = []
    for axis in (0, 1):
        d = np.abs(np.diff(a.grey, axis=axis))
        index = np.arange(d.shape[axis]) % 2 == 0
        even = np.expand_dims(index, 1 - axis).astype(float) * np.ones_like(d)
        mean_even = a.blocks.mean(d, even)
        mean_odd = a.blocks.mean(d, 1 - even)
        parities.append(np.abs(mean_even - mean_odd) / (mean_even + mean_odd + 2 / 255))
    parity = np.nanmean(parities, axis=0)
    best = float(np.nanmax(parity))
    share = float(np.nanmean(parity > 0.25))
    return Measured("upsampling-pixel-correlation", best, ramp(best, 0.25, 0.6), a.box(parity),
                    f"Neighbouring-pixel differences alternate small/large with a 2 px period (parity {best:.2f}, "
                    f"0 for camera-like pixels) over {share:.0%} of the image, as after nearest-style up-sampling.")


def spectral_peaks(a: Analysis) -> Measured | None:
    """Strongest residual-spectrum peak; onset 1.0 (the peak threshold of `traces`), full 3.0 log units."""
    peaks = a.traces.high_pass_peaks
    if not peaks:
        return None
    fy, fx, strength = peaks[0]
    h, w = a.residual.shape
    phase = np.exp(-2j * np.pi * (fy * np.arange(h)[:, None] + fx * np.arange(w)[None, :]))
    # Local Fourier coefficient at the peak frequency, relative to the block's residual energy.
    product = a.residual * phase
    local = np.abs(a.blocks.mean(product.real) + 1j * a.blocks.mean(product.imag)) / (a.detail + 1e-6)
    period = 1 / max(abs(fy), abs(fx))
    jpeg_note = " (8 px periods also come from JPEG blocks)" if abs(period - 8) < 0.5 or abs(period - 8 / 3) < 0.2 else ""
    return Measured("spectral-periodic-peaks", strength, ramp(strength, 1.0, 3.0), a.box(local),
                    f"The noise residual's spectrum has {len(peaks)} isolated periodic peak(s); the strongest, at "
                    f"({fy:.3f}, {fx:.3f}) cycles/pixel (period {period:.1f} px), stands {np.exp(strength):.1f}x above "
                    f"its surroundings{jpeg_note}.")


def _textured(a: Analysis) -> np.ndarray:
    return a.structure > TEXTURE_STD


def over_smoothing(a: Analysis) -> Measured | None:
    """Detail/structure drop below the image's median; onset 78%, full 95% less detail."""
    textured = _textured(a)
    if textured.sum() < 4:
        return None
    ratio = a.detail / (a.structure + 1e-6)
    typical = float(np.median(ratio[textured]))
    drop = np.where(textured, 1 - ratio / typical, 0.0)
    best = float(drop.max())
    return Measured("over-smoothing", best, ramp(best, 0.78, 0.95), a.box(drop),
                    f"A textured region has {best:.0%} less fine detail relative to its structure than the rest "
                    "of the image, as if it had been smoothed.")


def resolution_inconsistency(a: Analysis) -> Measured | None:
    """log2(p90 / p10) of the detail ratio over textured blocks; onset 2, full 3 octaves."""
    textured = _textured(a)
    if textured.sum() < 6:
        return None
    ratio = a.detail / (a.structure + 1e-6)
    p10, p90 = np.percentile(ratio[textured], [10, 90])
    spread = float(np.log2(p90 / max(p10, 1e-6)))
    blurriness = np.where(textured, -np.log2(np.maximum(ratio, 1e-6) / p90), np.nan)
    return Measured("resolution-inconsistency", spread, ramp(spread, 2.0, 3.0), a.box(blurriness),
                    f"Sharpness varies {2 ** spread:.1f}x between the sharpest and the blurriest textured regions; "
                    "the box marks the blurriest, as if rendered at a lower resolution.")


def noise_inconsistency(a: Analysis) -> Measured | None:
    """Block noise (mean |residual| off edges) vs median; onset 3.9, full 6.5 octaves."""
    flat_enough = (~ndimage.maximum_filter(a.edges, 5)).astype(np.float32)
    noise = a.blocks.mean(np.abs(a.residual), flat_enough)
    valid = np.isfinite(noise) & (a.blocks.mean(flat_enough) > 0.3)
    if valid.sum() < 4:
        return None
    typical = float(np.median(noise[valid]))
    octaves = np.where(valid, np.abs(np.log2((noise + 1e-4) / (typical + 1e-4))), 0.0)
    peak = np.unravel_index(np.argmax(octaves), octaves.shape)
    best = float(octaves[peak])
    word = "stronger" if noise[peak] > typical else "weaker"
    return Measured("random-noise-detailed-areas", best, ramp(best, 3.9, 6.5), a.box(octaves),
                    f"One region's noise is {2 ** best:.1f}x {word} than the image's typical noise "
                    f"({noise[peak] * 255:.1f} vs {typical * 255:.1f} grey levels), unlike a single camera sensor.")


def edge_aliasing(a: Analysis) -> Measured | None:
    """Gradient vs local edge orientation at strong edges; onset 33, full 42 degrees."""
    if a.edges.mean() < 0.002:
        return None
    # Structure tensor over 5x5: the dominant local orientation (doubled-angle representation).
    jxx = ndimage.uniform_filter(a.gx * a.gx, 5)
    jyy = ndimage.uniform_filter(a.gy * a.gy, 5)
    jxy = ndimage.uniform_filter(a.gx * a.gy, 5)
    local = 0.5 * np.arctan2(2 * jxy, jxx - jyy)
    # Unsmoothed pixel gradients see the stairs; the smoothed ones above are the edge's direction.
    raw_gy, raw_gx = np.gradient(a.grey)
    pixel = np.arctan2(raw_gy, raw_gx)
    # Orientations are defined modulo 180 degrees: wrap the difference into [-90, 90).
    deviation = np.degrees(np.abs((pixel - local + np.pi / 2) % np.pi - np.pi / 2))
    per_block = a.blocks.mean(deviation, a.edges.astype(float))
    counts = a.blocks.mean(a.edges.astype(float))
    per_block = np.where(counts > 0.01, per_block, np.nan)
    if not np.isfinite(per_block).any():
        return None
    best = float(np.nanmax(per_block))
    return Measured("edge-aliasing", best, ramp(best, 33, 42), a.box(per_block),
                    f"Along high-contrast edges pixel gradients deviate {best:.0f} degrees on average from the "
                    "edge's direction: the edges are stair-stepped (aliased) rather than smooth.")


def over_sharpening(a: Analysis) -> Measured | None:
    """Overshoot beyond the smoothed 9x9 range at edges, / edge contrast; onset 0.8, full 3.3."""
    if a.edges.mean() < 0.002:
        return None
    smooth = ndimage.gaussian_filter(a.grey, 2.0)
    high, low = ndimage.maximum_filter(smooth, 9), ndimage.minimum_filter(smooth, 9)
    overshoot = np.maximum(a.grey - high, 0) + np.maximum(low - a.grey, 0)
    near_edges = ndimage.maximum_filter(a.edges, 5).astype(np.float32)
    contrast = a.blocks.mean(high - low, near_edges)
    relative = a.blocks.mean(overshoot, near_edges) / (contrast + 1e-3)
    relative = np.where(a.blocks.mean(near_edges) > 0.02, relative, np.nan)
    if not np.isfinite(relative).any():
        return None
    best = float(np.nanmax(relative))
    return Measured("over-sharpening", best, ramp(best, 0.8, 3.3), a.box(relative),
                    f"Pixels next to edges overshoot the surrounding brightness range by {best:.0%} of the edge's "
                    "contrast on average, the bright/dark halos of strong sharpening.")


def colour_distribution(a: Analysis) -> Measured | None:
    """90th percentile of HSV saturation; onset 0.83, full 0.99."""
    high, low = a.rgb.max(axis=2).astype(np.float32), a.rgb.min(axis=2).astype(np.float32)
    saturation = np.where(high > 0.02 * 255, (high - low) / np.maximum(high, 1.0), np.float32(0))
    p90 = float(np.partition(saturation.ravel(), int(0.9 * (saturation.size - 1)))[int(0.9 * (saturation.size - 1))])
    return Measured("colour-distribution-anomaly", p90, ramp(p90, 0.83, 0.99), a.box(a.blocks.mean(saturation)),
                    f"Colours are unusually saturated: a tenth of the pixels have saturation above {p90:.2f} "
                    "(9 in 10 photographs stay below 0.83).")


def chroma_residual(a: Analysis) -> Measured | None:
    """Chroma / luma residual energy; onset 0.33, full 0.6."""
    rgb = to_float(a.rgb)
    cb = -0.168736 * rgb[..., 0] - 0.331264 * rgb[..., 1] + 0.5 * rgb[..., 2]
    cr = 0.5 * rgb[..., 0] - 0.418688 * rgb[..., 1] - 0.081312 * rgb[..., 2]
    chroma = np.sqrt(a.blocks.mean(high_pass(cb) ** 2 + high_pass(cr) ** 2))
    ratio = chroma / (a.detail + 2e-3)
    overall = float(np.sqrt(np.mean(chroma**2)) / (np.sqrt(np.mean(a.detail**2)) + 2e-3))
    return Measured("chrominance-residual-anomaly", overall, ramp(overall, 0.33, 0.6), a.box(ratio),
                    f"The colour channels carry {overall:.2f}x the luma's fine-detail energy; camera demosaicing "
                    "and chroma subsampling usually keep this below 0.33.")


def smooth_background(a: Analysis) -> Measured | None:
    """Share of flat (no structure) and almost noiseless blocks; onset 25%, full 50% of the image."""
    flat = (a.structure < TEXTURE_STD / 4) & (a.detail < 1.0 / 255)
    share = float(flat.mean())
    if share == 0:
        return None
    return Measured("smooth-background", share, ramp(share, 0.25, 0.5), a.box(flat.astype(float)),
                    f"{share:.0%} of the image is flat and almost noiseless (fine-detail level under 1 grey level), "
                    "a smooth low-detail background.")


MEASURES = (upsampling_parity, spectral_peaks, over_smoothing, resolution_inconsistency, noise_inconsistency,
            edge_aliasing, over_sharpening, colour_distribution, chroma_residual, smooth_background)


MIN_SIDE = 8  # pixels; smaller images get no measured artifacts


def measure_artifacts(image: np.ndarray | ImageTraces, regions: list[Region] | None = None) -> list[ArtifactFinding]:
    """Findings with score >= MIN_SCORE, strongest first (see the module docstring)."""
    if min(ImageTraces.of(image).rgb.shape[:2]) < MIN_SIDE:
        return []  # a few pixels carry no local statistics to measure
    taxonomy = load_taxonomy()
    analysis = Analysis(image, regions)
    findings = []
    for measure in MEASURES:
        measured = measure(analysis)
        if measured is None or measured.score < MIN_SCORE:
            continue
        kind = taxonomy.get(measured.id)
        findings.append(ArtifactFinding(id=kind.id, name=kind.name, group=kind.group, score=round(measured.score, 3),
                                        evidence="measured", explanation=measured.reason, box=measured.box))
    return sorted(findings, key=lambda f: -f.score)


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

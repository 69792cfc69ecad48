"""Measured artifacts: the taxonomy's pixel-measurable (M) entries, each with score, box and reason.

`measure_artifacts(image, regions)` returns the findings with score >= MIN_SCORE: those about a
region first, then those about the whole image (colour saturation, chroma residual, smooth
background), each strongest first (`schema.ranked`). Each finding has
- a score in 0..1 ramped from its raw measurement by the thresholds in `thresholds.json`
  (`thresholds.py`; written by `synthscan fit artifact-thresholds`);
- the box where it is anomalous (`windows.py`: block and sliding-window grids);
- a one-sentence reason quoting the measurement.

The package, by idea: `windows.py` (the window-sum engine), `analysis.py` (the maps every
measure shares, computed once), `resampling.py`, `noise.py`, `edges.py` and `colour.py` (the
measures by group), `runner.py` (runs them all, on threads for large images).

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
These measures describe an image; they do not detect generation. They are observations for a
person (or a language model) to weigh, next to the detector's verdict.
"""

from synthscan.explain.artifacts.analysis import Analysis, Measured
from synthscan.explain.artifacts.colour import chroma_residual, colour_coherence_break, colour_distribution, smooth_background
from synthscan.explain.artifacts.edges import edge_aliasing, over_sharpening
from synthscan.explain.artifacts.noise import noise_inconsistency, patterned_noise
from synthscan.explain.artifacts.resampling import (
    grid_pattern,
    over_smoothing,
    resolution_inconsistency,
    spectral_peaks,
    upsampling_parity,
)
from synthscan.explain.artifacts.runner import MEASURES, MIN_SCORE, measure_artifacts
from synthscan.explain.artifacts.thresholds import Threshold, load_thresholds, threshold
from synthscan.explain.artifacts.windows import Grid

__all__ = [
    "MEASURES", "MIN_SCORE", "Analysis", "Grid", "Measured", "Threshold", "chroma_residual",
    "colour_coherence_break", "colour_distribution", "edge_aliasing", "grid_pattern", "load_thresholds",
    "measure_artifacts", "noise_inconsistency", "over_sharpening", "over_smoothing", "patterned_noise",
    "resolution_inconsistency", "smooth_background", "spectral_peaks", "threshold", "upsampling_parity",
]  # fmt: skip

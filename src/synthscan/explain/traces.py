"""Trace views: the noise residual, the NPR map and the residual's Fourier spectrum.

- Noise residual: the image minus a denoised copy. With a detector that has a denoiser
  (`Detector.denoiser()`, e.g. spectral-dae's autoencoder), that one; otherwise a Gaussian high-pass
  (sigma 1 px), about 7x faster than a 3x3 median at 1024 px.
- NPR map: `x - nearest_up(nearest_down(x))` at factor 2, `detectors/npr.py`'s own residual.
- Spectrum: centred log-magnitude FFT of the grey residual, averaged over 128 px tiles
  (Welch's method, Hann window) so every image gives a spectrum of the same frequency grid; its
  azimuthal profile (mean per radial frequency bin) and periodic peaks, i.e. isolated dots that
  stand well above their surroundings in every direction, away from DC: the signatures of periodic
  up-sampling patterns (a stride-2 transposed convolution's checkerboard puts peaks at 0.5
  cycles/pixel, stride 4 at 0.25, ...; JPEG's 8 px blocks at multiples of 1/8). Plain nearest
  up-sampling leaves no linear peak; it shows in the NPR map and in `artifacts.py`'s grid test.

Pictures are at most MAX_MAP_SIDE px on their long side (block means), to keep reports light.

`ImageTraces` holds these intermediates for one image. The explainer builds it once and hands it
to the trace views, the measured artifacts and the family attribution, which would otherwise each
recompute the same blur, residual and FFTs.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import torch
from scipy import ndimage

from synthscan.colour import BT601_YCBCR
from synthscan.detectors.npr import npr_residual
from synthscan.explain.family_profiles import family_profile_map
from synthscan.explain.images import block_means, percentile_stretch
from synthscan.explain.render import colormap, map_image
from synthscan.explain.schema import MapImage, SpectrumSummary

SPECTRUM_TILE = 128  # the spectrum's size (smaller images use their largest even square)
MAX_SPECTRUM_TILES = 64
PROFILE_BINS = 64  # radial bins over 0..0.5 cycles/pixel
PEAK_MIN_RADIUS = 0.04  # cycles/pixel; closer to DC is image content, not up-sampling
PEAK_MIN_EXCESS = 1.0  # natural-log units above the surroundings: 2.7x their magnitude
MAX_PEAKS = 12
MAX_MAP_SIDE = 512
_GREY = BT601_YCBCR[0].astype(np.float32)


def to_float(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(rgb, dtype=np.float32) / 255.0


def grey(rgb: np.ndarray) -> np.ndarray:
    """Luma (BT.601) in 0..1."""
    return to_float(rgb) @ _GREY


def channel_extremes(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel (max, min) over the three channels, in the input's dtype (as `np.maximum` of
    the channels: numpy reduces a last axis of 3 slowly)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return np.maximum(np.maximum(r, g), b), np.minimum(np.minimum(r, g), b)


def high_pass(channel: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    return channel - ndimage.gaussian_filter(channel, sigma, mode="reflect")


def _denoiser(detector):
    """The detector's `denoiser()` (a CalibratedModel's detector's), or None."""
    detector = getattr(detector, "detector", detector)  # a CalibratedModel holds its detector
    return detector.denoiser() if detector is not None else None


def noise_residual(rgb: np.ndarray, detector=None) -> np.ndarray:
    """HxW grey noise residual (0..1 units): image minus the detector's denoiser output
    (`Detector.denoiser`), else a high-pass."""
    denoise = _denoiser(detector)
    if denoise is None:
        return high_pass(grey(rgb))
    x = torch.from_numpy(to_float(rgb)).permute(2, 0, 1)[None]
    with torch.inference_mode():
        residual = (x - denoise(x))[0].permute(1, 2, 0).numpy()
    return residual @ _GREY


def npr_map(rgb: np.ndarray, factor: int = 2) -> np.ndarray:
    """HxW mean absolute NPR residual over channels (odd trailing rows/columns are dropped)."""
    x = to_float(rgb)
    if min(x.shape[:2]) < factor:  # thinner than one block: mirror it up to one
        x = np.pad(x, [(0, max(0, factor - n)) for n in x.shape[:2]] + [(0, 0)], mode="symmetric")
    h, w = (x.shape[0] // factor) * factor, (x.shape[1] // factor) * factor
    batch = torch.from_numpy(np.ascontiguousarray(x[:h, :w])).permute(2, 0, 1)[None]
    return npr_residual(batch, factor)[0].abs().mean(0).numpy()  # the residual the npr detector sees


MIN_SPECTRUM_SIDE = 8


def residual_log_spectrum(residual: np.ndarray) -> np.ndarray:
    """Centred log-magnitude spectrum, SPECTRUM_TILE square (smaller for small images).

    Welch's method: the power spectra of Hann-windowed tiles overlapping by half are averaged
    (at most MAX_SPECTRUM_TILES, evenly spread), so that noise does not make false peaks.
    """
    if min(residual.shape[:2]) < MIN_SPECTRUM_SIDE:  # a few-pixel image: mirror it up to a usable size
        pad = [(0, max(0, MIN_SPECTRUM_SIDE - n)) for n in residual.shape[:2]]
        residual = np.pad(residual, pad, mode="symmetric")
    size = min(SPECTRUM_TILE, residual.shape[0] // 2 * 2, residual.shape[1] // 2 * 2)
    ys, xs = (_tile_starts(length, size) for length in residual.shape[:2])
    starts = [(y, x) for y in ys for x in xs]
    if len(starts) > MAX_SPECTRUM_TILES:
        starts = [starts[i] for i in np.linspace(0, len(starts) - 1, MAX_SPECTRUM_TILES).round().astype(int)]
    tiles = np.stack([residual[y : y + size, x : x + size] for y, x in starts])
    tiles = tiles - tiles.mean(axis=(1, 2), keepdims=True)
    window = np.outer(np.hanning(size), np.hanning(size)).astype(np.float32)
    power = (np.abs(np.fft.fft2(tiles * window)) ** 2).mean(axis=0)
    return np.fft.fftshift(0.5 * np.log(power + 1e-12)).astype(np.float32)


def _tile_starts(length: int, size: int) -> np.ndarray:
    count = max(1, int(np.ceil((length - size) / (size // 2))) + 1)
    return np.linspace(0, length - size, count).round().astype(int)


def _radius(size: int) -> np.ndarray:
    f = np.fft.fftshift(np.fft.fftfreq(size))
    return np.hypot(f[:, None], f[None, :])


def azimuthal_profile(log_spectrum: np.ndarray, bins: int = PROFILE_BINS) -> np.ndarray:
    """Mean log-magnitude per radial frequency bin over 0..0.5 cycles/pixel (low -> high)."""
    index = np.minimum((_radius(log_spectrum.shape[0]) / 0.5 * bins).astype(int), bins)
    sums = np.bincount(index.ravel(), log_spectrum.ravel(), minlength=bins + 1)[:bins]
    counts = np.bincount(index.ravel(), minlength=bins + 1)[:bins]
    filled = counts > 0  # small spectra leave bins empty: interpolate them from their neighbours
    centres = np.arange(bins)
    return np.interp(centres, centres[filled], sums[filled] / counts[filled]).astype(np.float32)


def point_contrast(log_spectrum: np.ndarray) -> np.ndarray:
    """How far each frequency stands above its surroundings in every direction.

    For each of 4 orientations (horizontal, vertical, both diagonals), the mean of the 4
    neighbours 2-3 bins away along that line; the contrast is the value minus the largest of
    these means. An isolated dot (a periodic pattern) scores high; a line through the spectrum
    (a straight edge in the image) scores ~0 along itself, and so does smooth content.
    """
    line_means = []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        shifted = [np.roll(log_spectrum, (k * dy, k * dx), axis=(0, 1)) for k in (-3, -2, 2, 3)]
        line_means.append(np.mean(shifted, axis=0))
    return log_spectrum - np.max(line_means, axis=0)


def find_peaks(log_spectrum: np.ndarray) -> list[tuple[float, float, float]]:
    """(fy, fx, strength) of periodic peaks, strongest first; one of each symmetric pair."""
    size = log_spectrum.shape[0]
    excess = point_contrast(log_spectrum)
    is_max = excess == ndimage.maximum_filter(excess, size=5, mode="wrap")
    freqs = np.fft.fftshift(np.fft.fftfreq(size))
    fy, fx = np.meshgrid(freqs, freqs, indexing="ij")
    # The spectrum of a real image is symmetric: keep the half with fy > 0 (or fy == 0, fx > 0),
    # and, on the -0.5 row (its own mirror, as -0.5 and +0.5 alias), the half with fx <= 0.
    half = (fy > 0) | ((fy == 0) & (fx > 0)) | ((fy == -0.5) & (fx <= 0))
    keep = is_max & half & (np.hypot(fy, fx) >= PEAK_MIN_RADIUS) & (excess >= PEAK_MIN_EXCESS)
    ys, xs = np.nonzero(keep)
    order = np.argsort(-excess[ys, xs])[:MAX_PEAKS]
    # A peak on the -0.5 row is reported as its mirror, so that every fy is >= 0.
    sign = np.where(fy == -0.5, -1.0, 1.0)
    return [(float(sign[y, x] * fy[y, x]), float(sign[y, x] * fx[y, x]), round(float(excess[y, x]), 3))
            for y, x in zip(ys[order], xs[order])]


class ImageTraces:
    """One image's grey luma, high-pass residual, spectra and NPR map, each computed at most once.

    `high_pass` (grey minus its sigma-1 blur) and its `high_pass_spectrum` are what the measured
    artifacts and the family features use; `residual` / `spectrum` are what the trace views
    show: the same arrays, unless the detector has a denoising autoencoder (then its residual).
    """

    def __init__(self, rgb: np.ndarray, detector=None):
        self.rgb = rgb
        self.detector = detector

    @classmethod
    def of(cls, image: np.ndarray | ImageTraces, detector=None) -> ImageTraces:
        return image if isinstance(image, ImageTraces) else cls(image, detector)

    @cached_property
    def grey(self) -> np.ndarray:
        return grey(self.rgb)

    @cached_property
    def blurred(self) -> np.ndarray:
        """The grey image's Gaussian blur, sigma 1 px (the high-pass's low part)."""
        return ndimage.gaussian_filter(self.grey, 1.0, mode="reflect")

    @cached_property
    def high_pass(self) -> np.ndarray:
        return self.grey - self.blurred

    @cached_property
    def high_pass_spectrum(self) -> np.ndarray:
        return residual_log_spectrum(self.high_pass)

    @cached_property
    def high_pass_peaks(self) -> list[tuple[float, float, float]]:
        return find_peaks(self.high_pass_spectrum)

    @property
    def denoised_by_detector(self) -> bool:
        return _denoiser(self.detector) is not None

    @cached_property
    def residual(self) -> np.ndarray:
        return noise_residual(self.rgb, self.detector) if self.denoised_by_detector else self.high_pass

    @cached_property
    def spectrum(self) -> np.ndarray:
        return residual_log_spectrum(self.residual) if self.denoised_by_detector else self.high_pass_spectrum

    @cached_property
    def peaks(self) -> list[tuple[float, float, float]]:
        return find_peaks(self.spectrum) if self.denoised_by_detector else self.high_pass_peaks

    @cached_property
    def npr(self) -> np.ndarray:
        return npr_map(self.rgb)


def spectrum_summary(image: np.ndarray | ImageTraces, detector=None) -> SpectrumSummary:
    """The residual spectrum's azimuthal profile and periodic peaks."""
    t = ImageTraces.of(image, detector)
    return SpectrumSummary(azimuthal_profile=[round(float(v), 4) for v in azimuthal_profile(t.spectrum)],
                           peaks=t.peaks)


def trace_maps(
    image: np.ndarray | ImageTraces, detector=None, *, mode: str = "base64", out_dir=None, stem: str = "image"
) -> list[MapImage]:
    """Residual, NPR and spectrum pictures with a note on how to read each, plus the spectrum's
    profile against the bundled generator-family means when the image is large enough
    (>= SPECTRUM_TILE px) for the same frequency grid. mode "base64" embeds the PNGs, "dir" writes
    them as `<out_dir>/<stem>.<kind>.png` (`render.map_image`)."""
    t = ImageTraces.of(image, detector)

    def picture(kind: str, title: str, values: np.ndarray, note: str) -> MapImage:
        return map_image(colormap(percentile_stretch(shrink(values))), kind=kind, title=title, note=note, mode=mode,
                         out_dir=out_dir, name=f"{stem}.{kind}")

    residual, spectrum, peaks, npr = t.residual, t.spectrum, t.peaks, t.npr
    denoiser = "the detector's denoising autoencoder" if t.denoised_by_detector else "a Gaussian high-pass (sigma 1 px)"
    peak_note = (f"{len(peaks)} periodic peak(s) stand out (strongest at {peaks[0][0]:.3f}, {peaks[0][1]:.3f} cycles/pixel)."
                 if peaks else "No periodic peak stands out.")
    maps = [
        picture("residual", "Noise residual", np.abs(residual),
             f"Image minus {denoiser}; bright = strong residual. A camera leaves even noise, "
             "generators leave patterned or missing noise."),
        picture("npr", "NPR map (x2)", npr,
             "Pixel minus its 2x2 block's top-left pixel; up-sampled regions show a regular grid or unusually low values."),
        picture("spectrum", "Residual spectrum (log magnitude)", spectrum,
             "Centre = low frequencies, edges = 0.5 cycles/pixel; isolated bright dots are periodic "
             f"(up-sampling) traces. {peak_note}"),
    ]
    # Family means were computed on full-size spectra: a smaller grid would not compare.
    profile_chart = (family_profile_map(azimuthal_profile(spectrum), mode=mode, out_dir=out_dir, name=f"{stem}.spectrum-profile")
                     if spectrum.shape[0] == SPECTRUM_TILE else None)
    return maps + [profile_chart] if profile_chart is not None else maps


def shrink(values: np.ndarray, max_side: int = MAX_MAP_SIDE) -> np.ndarray:
    """Block-mean a 2-D map by the smallest integer factor that brings it within max_side."""
    factor = -(-max(values.shape) // max_side)
    if factor == 1:
        return values
    h, w = values.shape[0] // factor * factor, values.shape[1] // factor * factor
    return block_means(values[:h, :w], factor)


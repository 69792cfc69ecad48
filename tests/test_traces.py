"""Trace views (residual, NPR, spectrum and peaks) and the taxonomy data."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from synthscan.explain import traces
from synthscan.explain.taxonomy import load_taxonomy
from synthscan.explain.traces import spectrum_summary, trace_maps


def noisy_grey(size: int = 256, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    grey = rng.normal(128, 20, (size, size, 1))
    return np.repeat(grey, 3, axis=2).clip(0, 255).astype(np.uint8)


def test_taxonomy_ids_are_unique_kebab_case_and_cover_the_document():
    taxonomy = load_taxonomy()
    ids = [a.id for a in taxonomy.artifacts]
    assert len(ids) == len(set(ids)) == 50  # every entry of artifact-taxonomy.md
    group_ids = {g.id for g in taxonomy.groups}
    for a in taxonomy.artifacts:
        assert a.id == a.id.lower() and " " not in a.id and "_" not in a.id
        assert a.group in group_ids and set(a.evidence) <= {"M", "S"} and a.evidence
    assert taxonomy.get("over-smoothing").measurable and not taxonomy.get("malformed-text").measurable
    with pytest.raises(KeyError):
        taxonomy.get("no-such-artifact")


def test_checkerboard_gives_a_peak_at_half_a_cycle_and_noise_gives_none():
    image = noisy_grey().astype(float)
    yy, xx = np.mgrid[0:256, 0:256]
    image += (8.0 * (-1.0) ** (yy + xx))[..., None]
    peaks = spectrum_summary(image.clip(0, 255).astype(np.uint8)).peaks
    assert peaks and abs(abs(peaks[0][0]) - 0.5) < 0.01 and abs(abs(peaks[0][1]) - 0.5) < 0.01
    assert peaks[0][2] >= traces.PEAK_MIN_EXCESS
    assert spectrum_summary(noisy_grey(seed=1)).peaks == []


def test_vertical_stripes_of_period_4_peak_at_a_quarter_cycle():
    image = noisy_grey().astype(float)
    image[:, ::4] += 10
    fy, fx, _ = spectrum_summary(image.clip(0, 255).astype(np.uint8)).peaks[0]
    assert fy == 0 and abs(abs(fx) - 0.25) < 0.01


def test_azimuthal_profile_sees_missing_high_frequencies():
    sharp = spectrum_summary(noisy_grey()).azimuthal_profile
    blurred_img = np.asarray(Image.fromarray(noisy_grey()).resize((128, 128)).resize((256, 256), Image.BILINEAR))
    blurred = spectrum_summary(blurred_img).azimuthal_profile
    assert len(sharp) == len(blurred) == traces.PROFILE_BINS
    assert blurred[-1] < sharp[-1] - 1.0  # up-sampled image: far less energy near 0.5 cycles/pixel


def test_npr_map_is_zero_on_nearest_upsampled_images():
    small = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    upsampled = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)
    assert traces.npr_map(upsampled).max() == 0
    assert traces.npr_map(noisy_grey(64)).mean() > 0.01


def test_trace_maps_are_decodable_pngs_of_the_stated_size():
    maps = trace_maps(noisy_grey(200))
    assert [m.kind for m in maps] == ["residual", "npr", "spectrum", "spectrum-profile"]
    for m in maps:
        picture = Image.open(io.BytesIO(base64.b64decode(m.png_base64)))
        assert picture.format == "PNG" and picture.size == (m.width, m.height) and m.note
    assert (maps[0].width, maps[0].height) == (200, 200)
    big = trace_maps(noisy_grey(1100))
    assert max(big[0].width, big[0].height) <= traces.MAX_MAP_SIDE


def test_detector_with_a_dae_is_used_as_the_denoiser():
    import torch

    from synthscan.detectors.spectral_dae import SpectralDAEConfig, SpectralDAEDetector

    torch.manual_seed(0)
    detector = SpectralDAEDetector(SpectralDAEConfig(dae_widths=(4, 4, 4)))
    rgb = noisy_grey(60)  # not a multiple of 8: padded for the U-Net, cropped back
    with_dae = traces.noise_residual(rgb, detector)
    assert with_dae.shape == (60, 60)
    assert not np.allclose(with_dae, traces.noise_residual(rgb))
    assert "autoencoder" in trace_maps(rgb, detector)[0].note


def test_small_and_odd_images_work():
    for shape in [(9, 13, 3), (31, 300, 3)]:
        rgb = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
        assert [m.kind for m in trace_maps(rgb)] == ["residual", "npr", "spectrum"]  # too small for the profile chart
        profile = spectrum_summary(rgb).azimuthal_profile
        assert len(profile) == traces.PROFILE_BINS and all(np.isfinite(profile)) and 0 not in profile

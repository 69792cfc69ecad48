"""Measured artifacts: planted artifacts are found where they were planted, clean images stay quiet."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from synthscan.explain import artifacts
from synthscan.explain.artifacts import measure_artifacts
from synthscan.explain.schema import Region, box_iou
from synthscan.explain.taxonomy import load_taxonomy


def textured_photo(size: int = 256, seed: int = 0) -> np.ndarray:
    """A photo-like image: 1/f ("pink") luminance texture, mild colour, even sensor-like noise."""
    rng = np.random.default_rng(seed)
    f = np.hypot(np.fft.fftfreq(size)[:, None], np.fft.fftfreq(size)[None, :])
    luma = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=(size, size))) / np.maximum(f, 1 / size)))
    luma = (luma - luma.mean()) / luma.std() * 40 + 128
    rgb = luma[..., None] * np.array([1.0, 0.95, 0.85]) + rng.normal(0, 2, (size, size, 1))
    return rgb.clip(0, 255).astype(np.uint8)


def finding(findings, artifact_id):
    return next((f for f in findings if f.id == artifact_id), None)


def test_clean_photo_like_image_has_no_findings():
    assert measure_artifacts(textured_photo(seed=1)) == []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nearest_upsampled_patch_is_found_and_boxed(seed):
    image = textured_photo(seed=seed)
    patch_box = (96, 64, 192, 160)  # x0, y0, x1, y1
    small = textured_photo(48, seed=seed + 10)
    image[64:160, 96:192] = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)
    found = finding(measure_artifacts(image), "upsampling-pixel-correlation")
    assert found is not None and found.score > 0.5
    assert box_iou(found.box, patch_box) >= 0.5
    assert "parity" in found.explanation


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_over_smoothed_patch_is_found_and_boxed(seed):
    image = textured_photo(seed=seed)
    patch_box = (128, 32, 224, 128)
    blurred = ndimage.gaussian_filter(image.astype(float), (2, 2, 0))
    image[32:128, 128:224] = blurred[32:128, 128:224].round().astype(np.uint8)
    found = {f.id: f for f in measure_artifacts(image)}
    assert "over-smoothing" in found or "resolution-inconsistency" in found
    for f in found.values():
        if f.id in {"over-smoothing", "resolution-inconsistency"}:
            assert box_iou(f.box, patch_box) >= 0.5, f


def test_checkerboard_patch_gives_a_spectral_peak_in_the_patch():
    image = textured_photo(seed=3).astype(float)
    yy, xx = np.mgrid[0:256, 0:256]
    patch = (yy >= 128) & (xx < 128)
    image[patch] += (6.0 * (-1.0) ** (yy + xx))[patch][:, None]  # a stride-2 checkerboard
    found = finding(measure_artifacts(image.clip(0, 255).astype(np.uint8)), "spectral-periodic-peaks")
    assert found is not None
    assert "(0.500, -0.500)" in found.explanation or "(0.500, 0.500)" in found.explanation
    assert box_iou(found.box, (0, 128, 128, 256)) >= 0.5


def test_findings_are_ranked_regions_first_valid_and_in_the_taxonomy():
    image = textured_photo(seed=4)
    image[:64, :128] = np.repeat(np.repeat(image[:32, :64], 2, axis=0), 2, axis=1)
    image[96:] = 200  # flat, noiseless: a smooth background over more than half the image
    findings = measure_artifacts(image)
    extents = {f.id: f.extent for f in findings}
    assert extents["upsampling-pixel-correlation"] == "region" and extents["smooth-background"] == "image"
    assert findings[0].id == "upsampling-pixel-correlation"  # listed first, though the background scores 1.0
    assert finding(findings, "smooth-background").score == 1.0
    for extent in ("region", "image"):
        scores = [f.score for f in findings if f.extent == extent]
        assert scores == sorted(scores, reverse=True)
    assert [f.extent for f in findings] == sorted((f.extent for f in findings), key=lambda e: e != "region")
    taxonomy = load_taxonomy()
    for f in findings:
        kind = taxonomy.get(f.id)
        assert kind.measurable and f.name == kind.name and f.group == kind.group
        assert f.evidence == "measured" and artifacts.MIN_SCORE <= f.score <= 1
        x0, y0, x1, y1 = f.box
        assert 0 <= x0 < x1 <= 256 and 0 <= y0 < y1 <= 256


def test_every_measure_emits_a_measurable_taxonomy_id():
    taxonomy = load_taxonomy()
    image = textured_photo(seed=5)
    analysis = artifacts.Analysis(image, None)
    for measure in artifacts.MEASURES:
        result = measure(analysis)
        if result is not None:
            assert taxonomy.get(result.id).measurable


def test_regions_break_ties_towards_the_attribution_region():
    image = textured_photo(seed=6)
    image[0:64, 0:64] = np.repeat(np.repeat(image[0:32, 0:32], 2, axis=0), 2, axis=1)
    image[192:256, 192:256] = np.repeat(np.repeat(image[192:224, 192:224], 2, axis=0), 2, axis=1)
    focus = [Region(box=(180, 180, 256, 256), score=0.9)]
    found = finding(measure_artifacts(image, regions=focus), "upsampling-pixel-correlation")
    assert box_iou(found.box, (192, 192, 256, 256)) >= 0.5
    found = finding(measure_artifacts(image, regions=[Region(box=(0, 0, 70, 70), score=0.9)]), "upsampling-pixel-correlation")
    assert box_iou(found.box, (0, 0, 64, 64)) >= 0.5


def test_small_and_odd_sized_images_do_not_crash():
    for shape in [(17, 23, 3), (40, 300, 3), (255, 129, 3)]:
        rgb = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
        for f in measure_artifacts(rgb):
            assert 0 <= f.box[0] < f.box[2] <= shape[1] and 0 <= f.box[1] < f.box[3] <= shape[0]


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 40, 3), (7, 7, 3)])
def test_images_of_a_few_pixels_explain_without_errors(shape, recwarn):
    from synthscan.explain.traces import spectrum_summary, trace_maps

    rgb = np.full(shape, 90, np.uint8)
    assert measure_artifacts(rgb) == []
    assert len(spectrum_summary(rgb).azimuthal_profile) > 0
    assert trace_maps(rgb)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


PATCHES = [(40, (37, 150)), (64, (21, 77)), (96, (130, 45)), (136, (60, 90))]  # side, (y, x): off the block grid


@pytest.mark.parametrize("side, corner", PATCHES)
def test_the_box_follows_the_patch_size_off_the_block_grid(side, corner):
    y, x = corner
    image = textured_photo(seed=0)
    small = textured_photo(side // 2, seed=10)
    image[y : y + side, x : x + side] = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)
    found = finding(measure_artifacts(image), "upsampling-pixel-correlation")
    assert box_iou(found.box, (x, y, x + side, y + side)) >= (0.6 if side < 64 else 0.8)


@pytest.mark.parametrize("side, corner", PATCHES[1:])  # a 40 px blur leaves too little texture to compare
def test_an_over_smoothed_patch_of_any_size_is_boxed(side, corner):
    y, x = corner
    image = textured_photo(seed=1)
    blurred = ndimage.gaussian_filter(image.astype(float), (2, 2, 0))
    image[y : y + side, x : x + side] = blurred[y : y + side, x : x + side].round().astype(np.uint8)
    found = finding(measure_artifacts(image), "over-smoothing")
    assert found is not None and box_iou(found.box, (x, y, x + side, y + side)) >= 0.5


@pytest.mark.parametrize("seed", [0, 1])
def test_a_blurred_patch_of_faint_texture_is_found_and_boxed(seed):
    """Faint texture (a fifth of the usual contrast) under even sensor noise: a blur empties the
    finest band of both, while the octave below keeps enough to measure the drop against."""
    image = (textured_photo(seed=seed).astype(float) - 128) * 0.2 + 128
    image += np.random.default_rng(seed).normal(0, 2, image.shape[:2])[..., None]
    image[100:196, 40:136] = ndimage.gaussian_filter(image, (2, 2, 0))[100:196, 40:136]
    found = finding(measure_artifacts(image.clip(0, 255).astype(np.uint8)), "over-smoothing")
    assert found is not None and found.score == 1.0
    assert box_iou(found.box, (40, 100, 136, 196)) >= 0.8


def test_sliding_window_means_match_direct_means():
    values = np.random.default_rng(0).random((50, 70)).astype(np.float32)
    grid = artifacts.Grid.sliding(values.shape)
    means = grid.mean(values)
    assert means.shape == (len(grid.y0), len(grid.x0)) and grid.y1[-1] == 50 and grid.x1[-1] == 70
    for i, j in [(0, 0), (2, 3), (len(grid.y0) - 1, len(grid.x0) - 1)]:
        window = values[grid.y0[i] : grid.y1[i], grid.x0[j] : grid.x1[j]]
        assert means[i, j] == pytest.approx(window.mean(), rel=1e-6)


def resampled_2x(patch: np.ndarray, resample) -> np.ndarray:
    """The patch shrunk to half size (box filter) and enlarged back with PIL's `resample`."""
    from PIL import Image

    h, w = patch.shape[:2]
    return np.asarray(Image.fromarray(patch).resize((w // 2, h // 2), Image.BOX).resize((w, h), resample))


@pytest.mark.parametrize("side, corner", PATCHES[1:])
@pytest.mark.parametrize("resample", ["BILINEAR", "BICUBIC"])
def test_a_linearly_upsampled_patch_is_found_and_boxed(side, corner, resample):
    """Linear and cubic 2x up-sampling leave first differences symmetric; the third-order parity
    (and the missing upper band) still finds the patch."""
    from PIL import Image

    y, x = corner
    image = textured_photo(seed=2)
    image[y : y + side, x : x + side] = resampled_2x(image[y : y + side, x : x + side], getattr(Image, resample))
    found = finding(measure_artifacts(image), "upsampling-pixel-correlation")
    assert found is not None and found.score > 0.5
    # The parity fades where the patch is flat, so the box can fall short of a small patch's edges.
    assert box_iou(found.box, (x, y, x + side, y + side)) >= (0.35 if side < 96 else 0.5)


@pytest.mark.parametrize("side, corner", PATCHES[2:])
@pytest.mark.parametrize("seed", [1, 3])
def test_a_blurred_patch_lacks_the_upper_band_at_full_score(side, corner, seed):
    y, x = corner
    image = textured_photo(seed=seed)
    blurred = ndimage.gaussian_filter(image.astype(float), (2, 2, 0))
    image[y : y + side, x : x + side] = blurred[y : y + side, x : x + side].round().astype(np.uint8)
    found = finding(measure_artifacts(image), "over-smoothing")
    assert found is not None and found.score == 1.0
    assert box_iou(found.box, (x, y, x + side, y + side)) >= 0.5


def test_parity_of_third_differences_stays_low_on_photo_like_noise():
    for seed in range(3):
        analysis = artifacts.Analysis(textured_photo(seed=seed), None)
        assert artifacts.upsampling_parity(analysis).value < 0.2  # the onset


# --- the measures added for the rest of the taxonomy's pixel-measurable entries ----------------


def test_an_additive_checkerboard_is_a_grid_pattern_in_its_region():
    image = textured_photo(seed=2).astype(float)
    y, x = np.mgrid[0:96, 0:96]
    image[100:196, 40:136] += (8.0 * (-1.0) ** (x + y))[..., None]  # a transposed convolution's checkerboard
    found = finding(measure_artifacts(image.clip(0, 255).astype(np.uint8)), "grid-checkerboard-pattern")
    assert found is not None and found.score == 1.0 and found.extent == "region"
    assert box_iou(found.box, (40, 100, 136, 196)) >= 0.5


def noise_surface(seed: int = 0) -> np.ndarray:
    """A uniform grey surface with even, independent camera-like noise."""
    grey = 120 + np.random.default_rng(seed).normal(0, 3, (256, 256))
    return np.repeat(grey[..., None], 3, axis=2)


def test_noise_streaked_along_one_direction_is_patterned_noise():
    image = noise_surface()
    streaks = ndimage.uniform_filter1d(120 + np.random.default_rng(1).normal(0, 6, (256, 256)), 4, axis=1)
    image[64:160, 128:224] = streaks[64:160, 128:224, None]
    findings = measure_artifacts(image.round().astype(np.uint8))
    found = finding(findings, "artificial-noise-uniform-surfaces")
    assert found is not None and found.score == 1.0
    assert box_iou(found.box, (128, 64, 224, 160)) >= 0.5
    assert finding(measure_artifacts(noise_surface(seed=2).round().astype(np.uint8)),
                   "artificial-noise-uniform-surfaces") is None


def test_colour_stripes_of_equal_brightness_are_a_colour_coherence_break():
    image = noise_surface().round()
    # Two colours of the same BT.601 luma (128), alternating every 4 px: colour edges, no luma edge.
    stripes = np.where((np.arange(96) // 4 % 2)[None, :, None] == 0, [150, 128, 70], [106, 128, 186])
    image[32:128, 100:196] = stripes + image[32:128, 100:196] - 120
    found = finding(measure_artifacts(image.clip(0, 255).astype(np.uint8)), "colour-coherence-break")
    assert found is not None and found.score == 1.0
    assert box_iou(found.box, (100, 32, 196, 128)) >= 0.5


def test_findings_do_not_depend_on_the_number_of_threads():
    image = textured_photo(seed=4)
    image[:64, :128] = np.repeat(np.repeat(image[:32, :64], 2, axis=0), 2, axis=1)
    image[96:] = 200
    one = measure_artifacts(image, threads=1)
    assert len(one) >= 2 and measure_artifacts(image, threads=3) == one


# --- one planted example per measure: found, scored, and boxed where it was planted ------------


def _saturated(image):
    box = (32, 32, 160, 160)
    luma = image[32:160, 32:160, 0].astype(float)
    image[32:160, 32:160] = np.stack([luma, luma * 0.05, luma * 0.05], -1).astype(np.uint8)
    return image, box


def _chroma_noise(image):
    """Colour noise of equal brightness (red up, green down) in a square."""
    noise = np.random.default_rng(0).normal(0, 25, (128, 128))
    image = image.astype(float)
    image[64:192, 64:192, 0] += noise
    image[64:192, 64:192, 1] -= noise * 0.299 / 0.587
    return image.clip(0, 255).astype(np.uint8), (64, 64, 192, 192)


def _flat(image):
    image[:, :160] = 120
    return image, (0, 0, 160, 256)


def _noisy_patch(image):
    image = ndimage.gaussian_filter(image.astype(float), (2, 2, 0))
    image += np.random.default_rng(1).normal(0, 0.5, image.shape)
    image[96:160, 96:160] += np.random.default_rng(2).normal(0, 60, (64, 64, 1))
    return image.clip(0, 255).astype(np.uint8), (96, 96, 160, 160)


def _blurred_patch(image):
    image[64:192, 32:160] = ndimage.gaussian_filter(image[64:192, 32:160].astype(float), (2.5, 2.5, 0)).astype(np.uint8)
    return image, (32, 64, 160, 192)


def _jagged_bars(image):
    """Bars at 10 degrees drawn without anti-aliasing: stair-stepped edges."""
    from PIL import Image, ImageDraw

    picture = Image.fromarray(ndimage.gaussian_filter(image.astype(float), (3, 3, 0)).astype(np.uint8))
    draw, slope = ImageDraw.Draw(picture), np.tan(np.radians(10))
    for k in range(5):
        y = 40 + 26 * k
        draw.polygon([(40, y), (180, y + 140 * slope), (180, y + 12 + 140 * slope), (40, y + 12)], fill=(250, 250, 250))
    return np.asarray(picture).copy(), (40, 40, 180, 181)


def _sharpened(image):
    from PIL import Image, ImageFilter

    box = (128, 32, 240, 208)
    picture = Image.fromarray(image)
    picture.paste(picture.crop(box).filter(ImageFilter.UnsharpMask(radius=1, percent=1000, threshold=0)), box[:2])
    return np.asarray(picture).copy(), box


def _nearest_upsampled(image):
    image[64:160, 96:192] = np.repeat(np.repeat(textured_photo(48, seed=10), 2, axis=0), 2, axis=1)
    return image, (96, 64, 192, 160)


def _checkerboard(image):
    checker = np.where((np.arange(96)[:, None] + np.arange(96)[None, :]) % 2, 6, -6)
    image = image.astype(int)
    image[64:160, 96:192] += checker[..., None]
    return image.clip(0, 255).astype(np.uint8), (96, 64, 192, 160)


def _streaked_noise(image):
    """Noise smeared along rows on a flat surface: correlated along x only."""
    image = np.full_like(image, 128).astype(float)
    streaks = ndimage.uniform_filter1d(np.random.default_rng(3).normal(0, 6, (256, 256)), 5, axis=1)
    image[:, :128] += streaks[:, :128, None]
    image[:, 128:] += np.random.default_rng(4).normal(0, 2, (256, 128, 1))
    return image.clip(0, 255).astype(np.uint8), (0, 0, 128, 256)


def _colour_stripes(image):
    """Red and green stripes of equal brightness: colour changes with no brightness edge."""
    image = np.full_like(image, 128)
    stripes = (np.arange(128) // 4) % 2 == 0
    red, green = np.array([200, 96, 128]), np.array([56, 169, 128])  # equal BT.601 luma
    image[64:192, 64:192] = np.where(stripes[None, :, None], red, green)
    return image.astype(np.uint8), (64, 64, 192, 192)


PLANTED = {
    "upsampling-pixel-correlation": _nearest_upsampled,
    "grid-checkerboard-pattern": _checkerboard,
    "spectral-periodic-peaks": _checkerboard,
    "over-smoothing": _blurred_patch,
    "resolution-inconsistency": _blurred_patch,
    "random-noise-detailed-areas": _noisy_patch,
    "artificial-noise-uniform-surfaces": _streaked_noise,
    "edge-aliasing": _jagged_bars,
    "over-sharpening": _sharpened,
    "colour-distribution-anomaly": _saturated,
    "colour-coherence-break": _colour_stripes,
    "chrominance-residual-anomaly": _chroma_noise,
    "smooth-background": _flat,
}


def test_every_measure_has_a_planted_example():
    """Each measure scores through its entry in thresholds.json, one per measure: a new measure
    needs a threshold, and then a planted example here."""
    assert len(artifacts.MEASURES) == len(artifacts.load_thresholds())
    assert set(PLANTED) == set(artifacts.load_thresholds())


@pytest.mark.parametrize("artifact_id", sorted(PLANTED))
def test_a_planted_example_is_found_and_boxed(artifact_id):
    image, box = PLANTED[artifact_id](textured_photo(seed=3))
    found = finding(measure_artifacts(image), artifact_id)
    assert found is not None, f"{artifact_id} not found"
    assert found.score >= artifacts.MIN_SCORE and box_iou(found.box, box) >= 0.5, (found.score, found.box, box)

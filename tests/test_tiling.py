"""The any-resolution tiling rule and the verdict rule (`Decision`)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from synthscan.data.augment import jpeg
from synthscan.detectors import tiling
from synthscan.detectors.base import InputPolicy
from synthscan.detectors.tiling import make_tiles, to_tensor_batch
from synthscan.result import Decision

CROP = 64


def noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def policy(**kw) -> InputPolicy:
    return InputPolicy(**{"mode": "tiles", "crop_size": CROP, "max_tiles": 1000, **kw})


def coverage(boxes, h: int, w: int) -> np.ndarray:
    mask = np.zeros((h, w), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h, (x0, y0, x1, y1)
        mask[y0:y1, x0:x1] = True
    return mask


SHAPES = [(64, 64), (65, 64), (150, 200), (128, 256), (300, 257), (97, 1000)]


@pytest.mark.parametrize("h, w", SHAPES)
def test_tiles_cover_the_image_with_native_pixels(h, w):
    rgb = noise(h, w)
    tiles = make_tiles(rgb, policy())
    assert not tiles.padded and not tiles.upscaled
    assert tiles.crops.dtype == np.uint8 and tiles.crops.shape[1:] == (CROP, CROP, 3)
    assert len(tiles.crops) == len(tiles.boxes) == math.ceil(h / CROP) * math.ceil(w / CROP)
    assert coverage(tiles.boxes, h, w).all()
    for crop, (x0, y0, x1, y1) in zip(tiles.crops, tiles.boxes):
        assert (x1 - x0, y1 - y0) == (CROP, CROP)  # never rescaled
        assert np.array_equal(crop, rgb[y0:y1, x0:x1])
    # Starts are spread from 0 to L - crop along each axis.
    assert min(b[0] for b in tiles.boxes) == 0 and max(b[2] for b in tiles.boxes) == w
    assert min(b[1] for b in tiles.boxes) == 0 and max(b[3] for b in tiles.boxes) == h


def test_tile_positions_for_a_known_size():
    tiles = make_tiles(noise(150, 200), policy())
    xs = sorted({b[0] for b in tiles.boxes})
    ys = sorted({b[1] for b in tiles.boxes})
    assert ys == [0, 43, 86]  # 3 rows: 0 .. 150-64=86, evenly
    assert xs == [0, 45, 91, 136]  # 4 cols: 0 .. 200-64=136, evenly
    assert tiles.boxes[:2] == [(0, 0, 64, 64), (45, 0, 109, 64)]  # row-major order


def test_max_tiles_is_an_even_deterministic_subset():
    rgb = noise(300, 300)
    full = make_tiles(rgb, policy())
    assert len(full.boxes) == 25
    a = make_tiles(rgb, policy(max_tiles=7))
    b = make_tiles(rgb, policy(max_tiles=7))
    assert len(a.boxes) == len(a.crops) == 7
    assert a.boxes == b.boxes and np.array_equal(a.crops, b.crops)
    assert set(a.boxes) <= set(full.boxes) and len(set(a.boxes)) == 7
    assert a.boxes[0] == full.boxes[0] and a.boxes[-1] == full.boxes[-1]  # both ends kept
    idx = [full.boxes.index(box) for box in a.boxes]
    assert idx == sorted(idx) == [0, 4, 8, 12, 16, 20, 24]
    for crop, (x0, y0, x1, y1) in zip(a.crops, a.boxes):
        assert np.array_equal(crop, rgb[y0:y1, x0:x1])
    # At or under the limit nothing is dropped.
    assert make_tiles(rgb, policy(max_tiles=25)).boxes == full.boxes


def test_small_image_is_mirror_padded():
    rgb = noise(40, 50)
    tiles = make_tiles(rgb, policy())
    assert tiles.padded and not tiles.upscaled
    assert tiles.crops.shape == (1, CROP, CROP, 3)
    assert tiles.boxes == [(0, 0, 50, 40)]  # the box stays inside the original image
    crop = tiles.crops[0]
    assert np.array_equal(crop[:40, :50], rgb)  # original pixels untouched
    assert np.array_equal(crop[40:, :50], rgb[::-1][:24])  # symmetric: edge row repeated
    assert np.array_equal(crop[:40, 50:], rgb[:, ::-1][:, :14])


def test_one_short_side_pads_that_axis_only():
    rgb = noise(40, 200)
    tiles = make_tiles(rgb, policy())
    assert tiles.padded
    assert len(tiles.boxes) == 4 and coverage(tiles.boxes, 40, 200).all()
    for crop, (x0, y0, x1, y1) in zip(tiles.crops, tiles.boxes):
        assert (y0, y1, x1 - x0) == (0, 40, CROP)
        assert np.array_equal(crop[:40], rgb[:, x0:x1])


def test_one_pixel_image_is_padded():
    tiles = make_tiles(noise(1, 1), policy())
    assert tiles.padded and tiles.crops.shape == (1, CROP, CROP, 3)
    assert (tiles.crops[0] == tiles.crops[0, 0, 0]).all()


def test_small_image_upscale_mode():
    rgb = noise(40, 50)
    tiles = make_tiles(rgb, policy(small_image="upscale"))
    assert tiles.upscaled and not tiles.padded
    # Short side 40 -> 64 (x1.6): 64 x 80, so one row of two tiles; boxes in original pixels.
    assert tiles.crops.shape == (2, CROP, CROP, 3)
    assert tiles.boxes == [(0, 0, 40, 40), (10, 0, 50, 40)]
    assert coverage(tiles.boxes, 40, 50).all()


def test_upscale_mode_leaves_big_images_alone():
    rgb = noise(100, 70)
    up = make_tiles(rgb, policy(small_image="upscale"))
    pad = make_tiles(rgb, policy())
    assert not up.upscaled and not up.padded
    assert up.boxes == pad.boxes and np.array_equal(up.crops, pad.crops)


@pytest.mark.parametrize("h, w, upscaled", [(150, 200, False), (40, 50, True), (64, 64, False)])
def test_resize_mode_returns_one_crop(h, w, upscaled):
    rgb = noise(h, w)
    tiles = make_tiles(rgb, policy(mode="resize", max_tiles=1))
    assert tiles.crops.shape == (1, CROP, CROP, 3)
    assert tiles.boxes == [(0, 0, w, h)]
    assert tiles.upscaled is upscaled and not tiles.padded
    if (h, w) == (CROP, CROP):
        assert np.array_equal(tiles.crops[0], rgb)


@pytest.mark.parametrize("mode", ["tiles", "resize"])
def test_jpeg_quality_reencodes_at_native_resolution(mode):
    rgb = noise(150, 200)
    plain = make_tiles(rgb, policy(mode=mode, max_tiles=4))
    normalised = make_tiles(rgb, policy(mode=mode, max_tiles=4, jpeg_quality=75))
    again = make_tiles(jpeg(rgb, 75), policy(mode=mode, max_tiles=4))
    assert normalised.boxes == plain.boxes
    assert np.array_equal(normalised.crops, again.crops)
    assert not np.array_equal(normalised.crops, plain.crops)


def test_jpeg_quality_on_a_large_image_reencodes_after_the_resize(monkeypatch):
    monkeypatch.setattr(tiling, "NATIVE_JPEG_MAX_PIXELS", 100 * 100)  # so that a small array counts as large
    rgb = noise(150, 200)
    normalised = make_tiles(rgb, policy(mode="resize", jpeg_quality=75))
    resized = make_tiles(rgb, policy(mode="resize"))
    assert np.array_equal(normalised.crops[0], jpeg(resized.crops[0], 75))
    tiled = make_tiles(rgb, policy(max_tiles=4, jpeg_quality=75))  # native pixels: always at full size
    assert np.array_equal(tiled.crops, make_tiles(jpeg(rgb, 75), policy(max_tiles=4)).crops)


@pytest.mark.parametrize("quality", [0, 101])
def test_jpeg_quality_outside_1_to_100_is_refused(quality):
    with pytest.raises(ValueError):
        policy(jpeg_quality=quality)


def test_to_tensor_batch():
    crops = noise(2 * 8, 8).reshape(2, 8, 8, 3)
    t = to_tensor_batch(crops)
    assert t.shape == (2, 3, 8, 8) and t.dtype == torch.float32
    assert 0.0 <= t.min() and t.max() <= 1.0
    assert t[1, 2, 3, 4].item() == pytest.approx(crops[1, 3, 4, 2] / 255.0)


# --- Decision -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "p, verdict",
    [
        (0.0, "real"),
        (0.3499, "real"),
        (0.35, "uncertain"),  # band edges are inclusive
        (0.5, "uncertain"),
        (0.65, "uncertain"),
        (0.6501, "ai-generated"),
        (1.0, "ai-generated"),
    ],
)
def test_default_decision(p, verdict):
    assert Decision().verdict(p) == verdict


def test_threshold_decides_outside_the_band():
    d = Decision(threshold=0.3, uncertain_low=0.2, uncertain_high=0.25)
    assert d.verdict(0.19) == "real"
    assert d.verdict(0.2) == d.verdict(0.25) == "uncertain"
    assert d.verdict(0.27) == "real"  # above the band but under the threshold
    assert d.verdict(0.3) == "ai-generated"  # p >= threshold is fake
    # An empty band (low > high) never says uncertain.
    no_band = Decision(threshold=0.5, uncertain_low=1.0, uncertain_high=0.0)
    assert (no_band.verdict(0.4999), no_band.verdict(0.5)) == ("real", "ai-generated")


def test_with_threshold_keeps_band_width():
    d = Decision(threshold=0.4, uncertain_low=0.3, uncertain_high=0.6)
    moved = d.with_threshold(0.5)
    assert moved.threshold == 0.5
    assert moved.uncertain_low == pytest.approx(0.4)
    assert moved.uncertain_high == pytest.approx(0.7)
    assert d.threshold == 0.4  # the original is unchanged
    assert moved.verdict(0.39) == "real" and moved.verdict(0.71) == "ai-generated"
    assert moved.verdict(0.45) == "uncertain"
    assert Decision().with_threshold(0.5) == Decision()


def test_with_threshold_near_the_ends_keeps_both_verdicts_reachable():
    hi = Decision().with_threshold(0.9)
    assert (hi.threshold, hi.uncertain_low, hi.uncertain_high) == pytest.approx((0.9, 0.75, 0.95))
    lo = Decision().with_threshold(0.1)
    assert (lo.threshold, lo.uncertain_low, lo.uncertain_high) == pytest.approx((0.1, 0.05, 0.25))
    assert hi.verdict(0.7) == "real" and lo.verdict(0.3) == "ai-generated"
    assert hi.verdict(0.96) == "ai-generated" and lo.verdict(0.04) == "real"

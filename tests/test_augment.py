"""Augmentations: each transform keeps shape and dtype, is reproducible with a seed, and the
config composes them (probabilities, ranges, order) and refuses bad values."""

import dataclasses

import numpy as np
import pytest

from synthscan.data.augment import AugmentConfig, augment, build_steps, gaussian_blur, jpeg, rotate

IMG = np.random.default_rng(1).integers(0, 256, (80, 96, 3), dtype=np.uint8)
ONLY = {"resized_crop_p": 0.0, "flip_p": 0.0, "blur_p": 0.0, "jpeg_p": 0.0}  # every step off


def _only(**on) -> AugmentConfig:
    return AugmentConfig(crop_size=48, **{**ONLY, **on})


@pytest.mark.parametrize(
    "on",
    [{}, {"resized_crop_p": 1.0}, {"flip_p": 1.0}, {"vflip_p": 1.0}, {"rotate_p": 1.0}, {"blur_p": 1.0},
     {"jpeg_p": 1.0}, {"noise_p": 1.0}],
    ids=lambda on: next(iter(on), "crop"),
)
def test_each_transform_keeps_shape_dtype_and_is_seeded(on):
    cfg = _only(**on)
    a = augment(IMG, cfg, np.random.default_rng(3))
    assert a.shape == (48, 48, 3) and a.dtype == np.uint8 and a.flags.c_contiguous
    assert np.array_equal(a, augment(IMG, cfg, np.random.default_rng(3)))
    # The step really runs: the output differs from the plain crop taken with the same seed.
    if on:
        crop = augment(IMG, _only(), np.random.default_rng(3))
        assert not np.array_equal(a, crop)


def test_random_strengths_change_with_the_seed():
    for on in ({"rotate_p": 1.0}, {"noise_p": 1.0}, {"blur_p": 1.0}, {"jpeg_p": 1.0}):
        cfg = _only(**on)
        outs = {augment(IMG, cfg, np.random.default_rng(seed)).tobytes() for seed in range(4)}
        assert len(outs) > 1, on


def test_rotation_mirrors_borders_instead_of_black_corners():
    # Values 100..200 everywhere: a black (0) fill in the corners would show as the minimum.
    img = np.random.default_rng(0).integers(100, 201, (64, 64, 3), dtype=np.uint8)
    for degrees in (-10, 3.5, 10, 45):
        out = rotate(img, degrees)
        assert out.shape == img.shape and out.dtype == np.uint8
        assert out.min() >= 100 and out.max() <= 200
    assert np.array_equal(rotate(img, 0), img)
    # A 90-degree turn of the content matches numpy's rot90 (PIL turns counter-clockwise).
    assert np.array_equal(rotate(img, 90), np.rot90(img))


def test_single_transforms():
    assert np.array_equal(gaussian_blur(IMG, 0), IMG)
    assert jpeg(IMG, 50).shape == IMG.shape
    assert np.abs(jpeg(IMG, 95).astype(int) - IMG).mean() < np.abs(jpeg(IMG, 10).astype(int) - IMG).mean()


def test_order_and_probabilities_compose():
    cfg = _only(flip_p=1.0, noise_p=1.0)
    assert len(build_steps(cfg)) == 2
    assert len(build_steps(dataclasses.replace(cfg, order=("noise",)))) == 1  # flip left out
    # flip then vflip equals vflip then flip; blur then JPEG differs from JPEG then blur.
    both = _only(flip_p=1.0, vflip_p=1.0)
    swapped = dataclasses.replace(both, order=("vflip", "flip"))
    assert np.array_equal(augment(IMG, both, np.random.default_rng(0)), augment(IMG, swapped, np.random.default_rng(0)))
    bj = _only(blur_p=1.0, jpeg_p=1.0, blur_sigma=(1.0, 1.0), jpeg_quality=(30, 30))
    jb = dataclasses.replace(bj, order=("jpeg", "blur"))
    assert not np.array_equal(augment(IMG, bj, np.random.default_rng(0)), augment(IMG, jb, np.random.default_rng(0)))
    # A step with probability 0 draws nothing: the other steps see the same random numbers.
    a = augment(IMG, _only(noise_p=1.0), np.random.default_rng(5))
    b = augment(IMG, _only(noise_p=1.0, rotate_p=0.0, rotate_degrees=30), np.random.default_rng(5))
    assert np.array_equal(a, b)


def test_config_from_a_table_and_its_errors():
    table = {"crop_size": 64, "jpeg_quality": [70, 90], "rotate_p": 0.3, "order": ["rotate", "jpeg"]}
    cfg = AugmentConfig(**table)
    assert cfg.jpeg_quality == (70, 90) and cfg.order == ("rotate", "jpeg")
    assert dataclasses.asdict(cfg)["rotate_p"] == 0.3  # the trainer records the config with asdict
    for bad, message in [
        ({"flip_p": 1.5}, "less than or equal to 1"),
        ({"blur_sigma": [2.0, 1.0]}, "blur_sigma must be a range"),
        ({"jpeg_quality": [0, 90]}, "jpeg_quality must lie in"),
        ({"resized_crop_scale": [0.0, 1.0]}, "resized_crop_scale must lie in"),
        ({"rotate_degrees": 90}, "less than or equal to 45"),
        ({"order": ["flip", "sharpen"]}, "order"),
        ({"order": ["flip", "flip"]}, "names a step twice"),
        ({"flip_prob": 0.5}, "Unexpected keyword argument"),
    ]:
        with pytest.raises(ValueError, match=message):
            AugmentConfig(**bad)

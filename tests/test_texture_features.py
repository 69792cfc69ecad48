"""texture_features: batched feature groups of texture-gbm, checked against scikit-image and themselves."""

import numpy as np
import pytest
import torch
from skimage.feature import graycomatrix, graycoprops, local_binary_pattern

from synthscan.detectors.texture_features import FEATURE_GROUPS, TileBatch, tile_features

ALL = list(FEATURE_GROUPS)


def tiles(n: int = 3, side: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = np.cumsum(rng.integers(-3, 4, (n, side, side, 3)), axis=2)  # some texture, not pure noise
    return np.clip(smooth + 128, 0, 255).astype(np.uint8)


def test_glcm_matches_scikit_image():
    batch = tiles()
    ours = tile_features(batch, ["glcm"])
    for tile, row in zip(batch, ours):
        grey = TileBatch.from_uint8(tile[None]).grey_u8[0].numpy().astype(np.uint8)
        glcm = graycomatrix(grey // 8, [1, 2], [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4], levels=32, symmetric=True, normed=True)
        expected = np.concatenate([graycoprops(glcm, p).mean(1)
                                   for p in ("contrast", "dissimilarity", "homogeneity", "energy", "correlation", "ASM")])
        np.testing.assert_allclose(row, expected, rtol=1e-6, atol=1e-9)


def test_lbp_matches_scikit_image():
    batch = tiles(seed=1)
    ours = tile_features(batch, ["lbp"])
    for tile, row in zip(batch, ours):
        grey = TileBatch.from_uint8(tile[None]).grey_u8[0].numpy().astype(np.uint8)
        expected = []
        for points, radius in ((8, 1), (16, 2)):
            codes = local_binary_pattern(grey, points, radius, method="uniform")[radius:-radius, radius:-radius]
            expected.append(np.bincount(codes.astype(int).ravel(), minlength=points + 2) / codes.size)
        # (16, 2) samples off the pixel grid: scikit-image rounds its interpolation slightly differently.
        np.testing.assert_allclose(row, np.concatenate(expected), atol=2e-3)


def test_every_group_is_finite_on_flat_noisy_and_small_tiles():
    flat = np.full((1, 32, 32, 3), 77, np.uint8)
    noisy = np.random.default_rng(2).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    features = tile_features(np.concatenate([flat, noisy, tiles(1, 32)]), ALL)
    assert np.isfinite(features).all()
    assert not np.allclose(features[0], features[1])


def test_batches_chunks_and_tensor_input_give_the_same_features():
    batch = tiles(5, 64, seed=3)
    whole = tile_features(batch, ALL)
    np.testing.assert_allclose(tile_features(batch, ALL, chunk=2), whole, rtol=1e-4, atol=1e-5)
    one_by_one = np.concatenate([tile_features(t[None], ALL) for t in batch])
    np.testing.assert_allclose(one_by_one, whole, rtol=1e-4, atol=1e-5)
    as_tensor = torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255  # what a detector receives
    np.testing.assert_allclose(tile_features(as_tensor, ALL), whole, rtol=1e-4, atol=1e-5)


def test_spam_tells_an_upsampled_tile_from_its_source():
    source = tiles(1, 64, seed=4)
    upsampled = source[:, ::2, ::2].repeat(2, axis=1).repeat(2, axis=2)  # nearest 2x: half the differences are 0
    features = tile_features(np.concatenate([source, upsampled]), ["spam"])
    zero_zero = 3 * 7 + 3  # the (d_i, d_{i+1}) = (0, 0) bin of the horizontal/vertical histogram
    assert features[1, zero_zero] > 3 * features[0, zero_zero]


def test_grid_phase_finds_the_period_of_nearest_upsampling():
    source = tiles(1, 64, seed=5)
    upsampled = source[:, ::2, ::2].repeat(2, axis=1).repeat(2, axis=2)
    phase = tile_features(upsampled, ["grid_phase"])[0, :8]  # first differences per column phase mod 8
    assert phase[0::2].mean() < 0.2 * phase[1::2].mean()  # even-phase differences lie inside a repeated pair


def test_unknown_group_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown feature group"):
        tile_features(tiles(1), ["glcm", "wavelets"])

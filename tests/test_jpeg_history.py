"""The JPEG-history estimate and the route it drives (images re-saved as JPEG go to a second head)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from synthscan.detectors.base import CalibratedModel
from synthscan.detectors.jpeg_history import estimate_jpeg_quality
from synthscan.detectors.scoring import RecompressedRoute
from synthscan.result import Decision
from synthscan.scanning import Scanner


def photo_like(seed: int = 0, size: int = 256) -> np.ndarray:
    """Smooth structure plus fine noise: JPEG leaves many non-zero low-frequency coefficients."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (size // 16, size // 16, 3), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((size, size), Image.BICUBIC).filter(ImageFilter.GaussianBlur(2)), np.float32)
    return np.clip(smooth + rng.normal(0, 6, smooth.shape), 0, 255).astype(np.uint8)


def saved(rgb: np.ndarray, fmt: str, **kw) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt, **kw)
    return np.asarray(Image.open(buf).convert("RGB"))


@pytest.mark.parametrize("quality", [55, 70, 80, 90, 95])
def test_the_last_jpeg_quality_is_read_from_the_pixels(quality):
    estimate = estimate_jpeg_quality(saved(photo_like(quality), "JPEG", quality=quality))
    assert estimate is not None and abs(estimate - quality) <= 2


def test_the_last_save_counts_not_an_earlier_one():
    twice = saved(saved(photo_like(1), "JPEG", quality=95), "JPEG", quality=75)
    assert abs(estimate_jpeg_quality(twice) - 75) <= 2


@pytest.mark.parametrize("make", [
    lambda rgb: rgb,  # never compressed
    lambda rgb: saved(rgb, "PNG"),
    lambda rgb: saved(rgb, "WEBP", quality=60),
    lambda rgb: np.asarray(Image.fromarray(saved(rgb, "JPEG", quality=70)).resize((200, 200), Image.BICUBIC)),
    lambda rgb: saved(rgb, "JPEG", quality=70)[3:, 5:],  # cropped off the 8-pixel grid
    lambda rgb: saved(rgb, "JPEG", quality=70)[:40, :40],  # too small to judge
], ids=["raw", "png", "webp", "jpeg-then-resized", "jpeg-then-cropped", "tiny"])
def test_no_jpeg_history_is_found_where_there_is_none_on_the_grid(make):
    assert estimate_jpeg_quality(make(photo_like(2))) is None


@pytest.fixture
def routed_model(tmp_path, tiny_model):
    """tiny-npr routing images last saved below JPEG 93 to a second tiny model with other weights,
    calibration and decision."""
    head = CalibratedModel.load(tiny_model.save(tmp_path / "m" / "tiny-recompressed"))
    head.info.name = "the re-post head"  # not its file's stem: the route names the file
    head.info.calibration.bias = 1.0
    head.info.decision = Decision(threshold=0.7, uncertain_low=0.65, uncertain_high=0.75)
    head.detector.head[-1].bias.data += 0.5
    head.save(tmp_path / "m" / "tiny-recompressed")
    tiny_model.info.name = "tiny-main"
    tiny_model.info.recompressed = RecompressedRoute(model="tiny-recompressed")
    return CalibratedModel.load(tiny_model.save(tmp_path / "m" / "tiny-main"))


def test_a_routed_model_sends_recompressed_images_to_its_head(routed_model):
    head, original = routed_model.recompressed_scorer, photo_like(3)
    assert head is not None and head.name == "the re-post head"
    reposted = saved(original, "JPEG", quality=80)
    kept, routed = routed_model.score_many([original, reposted])
    assert kept.scored_by is None and kept.jpeg_quality is None
    assert kept.p_fake == pytest.approx(routed_model._score_direct([original], 32, routed_model.info.decision)[0].p_fake)
    assert routed.scored_by == "the re-post head" and abs(routed.jpeg_quality - 80) <= 2
    alone = head.score(reposted)
    assert (routed.p_fake, routed.threshold) == (pytest.approx(alone.p_fake), 0.7)
    # An explicit decision (a user's threshold) applies to both heads.
    mine = Decision(threshold=0.2, uncertain_low=0.1, uncertain_high=0.3)
    assert {s.threshold for s in routed_model.score_many([original, reposted], decision=mine)} == {0.2}
    # JPEG 95 (synthbench's own encoding, and most originals) stays with the model itself.
    assert routed_model.score(saved(original, "JPEG", quality=95)).scored_by is None


def test_a_scan_says_when_the_recompressed_head_scored_an_image(routed_model, tmp_path):
    Image.fromarray(photo_like(4)).save(tmp_path / "repost.jpg", quality=75)
    (result,) = Scanner(routed_model, provenance=False).scan_paths([str(tmp_path / "repost.jpg")])
    notice = next(n for n in result.warnings if n.code == "jpeg-recompressed")
    assert "the re-post head" in notice.message and result.threshold == 0.7


def test_an_onnx_export_keeps_the_route(routed_model, tmp_path):
    pytest.importorskip("onnxruntime")
    from synthscan.runtime.onnx_export import export_onnx
    from synthscan.runtime.onnx_model import load_onnx_model

    export_onnx(routed_model, tmp_path / "export")
    exported = load_onnx_model(tmp_path / "export")  # the folder holds both; the router is the model
    assert exported.name == "tiny-main" and exported.recompressed_scorer.name == "the re-post head"
    images = [photo_like(5), saved(photo_like(5), "JPEG", quality=70)]
    for torch_score, onnx_score in zip(routed_model.score_many(images), exported.score_many(images)):
        assert onnx_score.scored_by == torch_score.scored_by
        assert onnx_score.p_fake == pytest.approx(torch_score.p_fake, abs=1e-4)


def test_a_routed_model_saved_elsewhere_takes_its_head_along(routed_model, tmp_path):
    copy = CalibratedModel.load(routed_model.save(tmp_path / "elsewhere" / "copy"))
    reposted = saved(photo_like(6), "JPEG", quality=80)
    assert copy.score(reposted) == routed_model.score(reposted)
    assert copy.score(reposted).scored_by == "the re-post head"


def test_route_false_scores_with_the_models_own_head(routed_model):
    """What `calibrate` refits: the router's own head, even for images it would route."""
    reposted = saved(photo_like(7), "JPEG", quality=80)
    own = routed_model.score_many([reposted], route=False)[0]
    assert own.scored_by is None
    assert own.raw_logit == pytest.approx(routed_model._score_direct([reposted], 32, routed_model.info.decision)[0].raw_logit)
    assert own.raw_logit != pytest.approx(routed_model.score(reposted).raw_logit)


def test_a_folder_holding_a_routed_model_and_its_head_names_the_router(routed_model, tmp_path):
    from synthscan.detectors.registry import load_model

    routed_model.save(tmp_path / "folder" / "router")
    assert load_model(tmp_path / "folder").info.name == "tiny-main"


def test_the_maps_of_a_routed_image_explain_the_head_that_scored_it(routed_model, monkeypatch):
    from synthscan.explain import explainer

    explained = []
    real_maps = explainer.attribution_maps
    monkeypatch.setattr(explainer, "attribution_maps",
                        lambda model, *a, **k: explained.append(model.name) or real_maps(model, *a, **k))
    explainer.explain_image(routed_model, saved(photo_like(8), "JPEG", quality=75), maps="none")
    explainer.explain_image(routed_model, photo_like(8), maps="none")
    assert explained == ["the re-post head", "tiny-main"]

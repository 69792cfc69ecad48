"""Tile-score maps: a heatmap from the detector's own scores of half-overlapping crops, for
detectors without gradients; checked with a gradient-free detector that scores bright pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TINY_CROP, TinyTilesConfig, noise_rgb
from typer.testing import CliRunner

from synthscan.cli.main import app
from synthscan.detectors.base import (
    CalibratedModel,
    Calibration,
    Detector,
    ModelInfo,
)
from synthscan.explain import explain_image
from synthscan.explain.attribution import supports, top_regions
from synthscan.explain.schema import box_iou
from synthscan.explain.tile_scores import grid_counts, tile_score_map

CROP = TINY_CROP


class BrightTiles(Detector):
    """No parameters, no layers: the logit grows with the share of near-white pixels in a crop."""

    name = "bright-tiles"
    Config = TinyTilesConfig

    def __init__(self, config=None):
        super().__init__(config)
        self.crops_scored = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.crops_scored += len(x)
        return 20 * (x.mean(1) > 0.9).float().mean((1, 2)) - 2


def bright_model() -> CalibratedModel:
    info = ModelInfo(detector="bright-tiles", name="bright", calibration=Calibration(scale=0.8, bias=0.1))
    return CalibratedModel(BrightTiles(), info)


def dark_image_with_white_patch(h: int, w: int, box: tuple[int, int, int, int]) -> np.ndarray:
    rgb = noise_rgb(h, w, seed=1) // 2  # 0..127: never "bright"
    x0, y0, x1, y1 = box
    rgb[y0:y1, x0:x1] = 255
    return rgb


def test_the_grid_overlaps_by_half_a_crop_and_shrinks_to_the_cap():
    assert grid_counts(256, 256, 128, 64) == (3, 3)  # starts 0, 64, 128
    assert grid_counts(1024, 1024, 128, 1000) == (15, 15)
    ny, nx = grid_counts(1024, 1024, 128, 64)
    assert (ny, nx) == (8, 8)  # fewer, non-overlapping crops: still covers the image
    assert grid_counts(1024, 512, 128, 40) == (9, 4)  # both axes keep about the same overlap
    assert grid_counts(1024, 1024, 128, 40) == (8, 8)  # covering needs 64: `grid_tiles` takes a subset


@pytest.mark.parametrize("box", [(96, 32, 144, 80), (8, 100, 40, 132), (150, 20, 250, 120)])
def test_the_map_peaks_on_the_patch_the_detector_reacts_to(box):
    rgb = dark_image_with_white_patch(160, 256, box)
    m = tile_score_map(bright_model(), rgb)
    assert m.method == "tile-scores" and m.values.shape == (160, 256) and m.coverage == 1.0
    assert m.values.max() == pytest.approx(1.0) and m.values.min() == 0.0
    # The map's resolution is the stride (half a crop): its peak lies on the patch or within that.
    peak_y, peak_x = np.unravel_index(np.argmax(m.values), m.values.shape)
    x0, y0, x1, y1 = box
    reach = CROP // 2
    assert x0 - reach <= peak_x < x1 + reach and y0 - reach <= peak_y < y1 + reach
    assert m.values[(y0 + y1) // 2, (x0 + x1) // 2] > 0.75
    region = top_regions(m.values, source=m.method)[0]
    assert box_iou(region.box, box) > 0.2  # crops are 64 px, so the box is coarse but on the patch
    # The target "real" map is the complement: dark on the patch.
    real = tile_score_map(bright_model(), rgb, target="real")
    assert real.values[peak_y, peak_x] == pytest.approx(0.0, abs=1e-6)


def test_uniform_images_give_no_region():
    m = tile_score_map(bright_model(), noise_rgb(128, 192) // 2)
    assert m.values.max() == 0 and top_regions(m.values) == [] and "does not single out" in m.note


def test_the_cap_bounds_the_model_calls_and_is_reported():
    model = bright_model()
    m = tile_score_map(model, dark_image_with_white_patch(512, 512, (0, 0, 32, 32)), max_tiles=20)
    assert model.detector.crops_scored == 20 and m.coverage < 1.0
    assert any("20 crops (its cap) instead of the 225" in w for w in m.warnings)


def test_crops_the_scan_scored_are_not_scored_again():
    model = bright_model()
    rgb = dark_image_with_white_patch(128, 128, (10, 10, 40, 40))
    full = tile_score_map(model, rgb)
    assert model.detector.crops_scored == 9
    scanned = {(0, 0, 64, 64): 0.9, (64, 64, 128, 128): 0.2}
    again = tile_score_map(model, rgb, known=scanned)
    assert model.detector.crops_scored == 9 + 7
    assert not np.allclose(again.values, full.values)  # the given scores were used


def test_a_model_without_gradients_gets_a_tile_score_heatmap_and_regions():
    model = bright_model()
    assert not supports(model.detector, "gradcam") and supports(model.detector, "tile-scores")
    box = (64, 64, 128, 128)
    e = explain_image(model, dark_image_with_white_patch(192, 192, box))
    assert e.maps[0].kind == "tile-scores" and e.maps[0].png_base64
    assert e.regions and e.regions[0].source == "tile-scores" and box_iou(e.regions[0].box, box) >= 0.5
    assert any("gradcam cannot explain" in w and "tile-score map is shown instead" in w for w in e.warnings)


def test_cli_explain_accepts_the_tile_scores_method(tiny_model_path, tmp_path):
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.fromarray(np.hstack([noise_rgb(64, 64, seed=2) // 4, noise_rgb(64, 64, seed=3)])).save(path)
    r = CliRunner().invoke(app, ["explain", str(path), "--model", str(tiny_model_path), "--method", "tile-scores",
                                 "-f", "json", "--maps-dir", str(tmp_path / "maps")])
    assert r.exit_code == 0, r.output
    assert list((tmp_path / "maps").glob("*.tile-scores.png"))


def test_regions_are_the_top_scoring_crops_not_one_box_over_the_image():
    patch = (70, 70, 106, 106)  # inside the crop starting at (64, 64) only, among the 32-px-stride grid
    m = tile_score_map(bright_model(), dark_image_with_white_patch(256, 256, patch))
    assert m.regions, "a map with a clear peak gives regions"
    top = m.regions[0]
    assert top.source == "tile-scores" and top.box == (64, 64, 128, 128)
    assert all(r.box[2] - r.box[0] == CROP and r.box[3] - r.box[1] == CROP for r in m.regions)
    assert [r.score for r in m.regions] == sorted((r.score for r in m.regions), reverse=True)
    flat = tile_score_map(bright_model(), noise_rgb(256, 256, seed=2) // 2)
    assert flat.regions == []

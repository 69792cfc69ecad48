"""`synthscan.scanning`: one result per file, in order, with errors in the stream."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch

from synthscan.detectors.base import CalibratedModel
from synthscan.detectors.tiling import make_tiles, to_tensor_batch
from synthscan.io import load_image
from synthscan.scanning import Scanner, scan

CROP = 64


def expected_tiles(h: int, w: int, crop: int = CROP, max_tiles: int = 16) -> int:
    return min(max_tiles, math.ceil(max(h, crop) / crop) * math.ceil(max(w, crop) / crop))


def test_folder_scan_results_in_sorted_order_with_errors(image_folder, image_specs, tiny_model_path):
    results = scan([image_folder], model=tiny_model_path, workers=2)
    names = sorted({**image_specs["good"], **image_specs["bad"]})
    assert [r.path for r in results] == [str(image_folder / n) for n in names]
    by_name = {r.path.rsplit("/", 1)[-1]: r for r in results}
    for name, code in image_specs["bad"].items():
        r = by_name[name]
        assert r.status == "error" and not r.ok
        assert r.error is not None and r.error.code == code, (name, r.error)
        assert r.p_fake is None and r.verdict is None and r.tiles == 0
        assert r.model == "tiny-npr"
    for name, (h, w) in image_specs["good"].items():
        r = by_name[name]
        assert r.ok and r.error is None, (name, r.error)
        assert (r.height, r.width) == (h, w)
        assert r.format == ("JPEG" if name.endswith(".jpg") else "PNG")
        assert r.sha256 == hashlib.sha256((image_folder / name).read_bytes()).hexdigest()
        assert 0.0 <= r.p_fake <= 1.0
        assert r.threshold == 0.5
        assert (r.model, r.model_version) == ("tiny-npr", "0.0.1")


def test_explicit_paths_keep_input_order_and_missing_files_do_not_stop_the_batch(image_folder, tiny_model_path):
    order = ["small.png", "notes.jpg", "big.png", "missing.png", "photo.jpg", "empty.png", "square.png"]
    paths = [str(image_folder / n) for n in order]
    results = scan(paths, model=tiny_model_path, batch_size=3)
    assert [r.path for r in results] == paths
    assert [r.status for r in results] == ["ok", "error", "ok", "error", "ok", "error", "ok"]
    assert [r.error.code for r in results if not r.ok] == ["not-an-image", "not-found", "empty"]


def test_verdict_tiles_and_padding_follow_the_rules(image_folder, image_specs, tiny_model_path):
    scanner = Scanner(tiny_model_path)
    decision = scanner.decision
    assert decision == CalibratedModel.load(tiny_model_path).info.decision
    paths = [str(image_folder / n) for n in image_specs["good"]]
    for r, (name, (h, w)) in zip(scanner.scan_paths(paths), image_specs["good"].items()):
        assert r.verdict == decision.verdict(r.p_fake)
        assert r.tiles == len(r.tile_scores) == expected_tiles(h, w), name
        small = min(h, w) < CROP
        assert r.padded is small
        assert ("padded" in [w.code for w in r.warnings]) is small
        for t in r.tile_scores:
            x0, y0, x1, y1 = t.box
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
            assert 0.0 <= t.p_fake <= 1.0
    big = next(scanner.scan_paths([str(image_folder / "big.png")]))
    assert big.tiles == 12  # 150 x 200 at 64 px: 3 x 4


def test_max_tiles_caps_the_tile_count(tmp_path, tiny_model_path):
    from PIL import Image

    path = tmp_path / "large.png"
    Image.fromarray(np.random.default_rng(5).integers(0, 256, (300, 300, 3), dtype=np.uint8)).save(path)
    (r,) = scan([path], model=tiny_model_path)
    assert r.ok and r.tiles == 16 and len(r.tile_scores) == 16  # 5 x 5 = 25 tiles capped at 16


def test_threshold_override(image_folder, tiny_model_path):
    scanner = Scanner(tiny_model_path, threshold=0.9)
    assert scanner.decision.threshold == 0.9
    # The band keeps its width (0.45..0.55 around 0.5), centred on the new threshold.
    assert scanner.decision.uncertain_low == pytest.approx(0.85)
    assert scanner.decision.uncertain_high == pytest.approx(0.95)
    results = list(scanner.scan_paths([str(image_folder / "big.png"), str(image_folder / "photo.jpg")]))
    for r in results:
        assert r.threshold == 0.9
        assert r.verdict == scanner.decision.verdict(r.p_fake)
    via_scan = scan([image_folder / "big.png"], model=tiny_model_path, threshold=0.9)
    assert via_scan[0].threshold == 0.9
    assert via_scan[0].p_fake == pytest.approx(results[0].p_fake, abs=1e-6)  # probability unchanged


def test_p_fake_is_sigmoid_of_mean_calibrated_tile_logit(image_folder, tiny_model_path):
    model = CalibratedModel.load(tiny_model_path)
    cal = model.info.calibration
    assert (cal.scale, cal.bias) != (1.0, 0.0)  # the fixture's calibration is not the identity
    spread = {}
    for name in ("big.png", "photo.jpg", "small.png"):
        path = str(image_folder / name)
        img = load_image(path)
        tiles = make_tiles(img.rgb, model.detector.input_policy)
        with torch.no_grad():
            raw = model.detector(to_tensor_batch(tiles.crops)).double().numpy()
        z = cal.scale * raw + cal.bias
        expected = 1.0 / (1.0 + np.exp(-z.mean()))
        (r,) = scan([path], model=tiny_model_path)
        assert r.p_fake == pytest.approx(expected, abs=1e-5), name
        per_tile = 1.0 / (1.0 + np.exp(-z))
        assert [t.p_fake for t in r.tile_scores] == pytest.approx(per_tile.tolist(), abs=1e-5)
        assert [t.box for t in r.tile_scores] == tiles.boxes
        spread[name] = (np.ptp(z), abs(expected - per_tile.mean()))
    # Tiles differ, so the mean of logits is not the mean of probabilities: the rule is tested.
    assert spread["big.png"][0] > 0.5 and spread["big.png"][1] > 1e-3


def test_batch_size_does_not_change_scores(image_folder, tiny_model_path):
    one = scan([image_folder], model=tiny_model_path, batch_size=1, workers=1)
    many = scan([image_folder], model=tiny_model_path, batch_size=16)
    assert [r.path for r in one] == [r.path for r in many]
    for a, b in zip(one, many):
        assert a.status == b.status
        if a.ok:
            assert a.p_fake == pytest.approx(b.p_fake, abs=1e-5)
            assert [t.p_fake for t in a.tile_scores] == pytest.approx([t.p_fake for t in b.tile_scores], abs=1e-5)


def test_long_input_spans_several_chunks(image_folder, tiny_model_path):
    # More files than one chunk (max(batch_size, 8)), mixed good and bad, in a fixed odd order.
    names = ["square.png", "notes.jpg", "small.png", "empty.png"] * 5
    paths = [str(image_folder / n) for n in names]
    scanner = Scanner(tiny_model_path, batch_size=2, workers=2)
    results = list(scanner.scan_paths(iter(paths)))
    # Repeated paths given explicitly are each scanned (deduplication is iter_image_paths' job).
    assert [r.path for r in results] == paths
    assert [r.ok for r in results] == [True, False, True, False] * 5
    squares = {r.p_fake for r in results if r.path.endswith("square.png")}
    assert len(squares) == 1


def test_scan_images_in_memory(image_folder, tiny_model_path):
    scanner = Scanner(tiny_model_path)
    data = (image_folder / "photo.jpg").read_bytes()
    (r,) = scanner.scan_images([load_image(data, name="upload.jpg")])
    (from_file,) = scanner.scan_paths([str(image_folder / "photo.jpg")])
    assert r.path == "upload.jpg" and r.ok
    assert r.p_fake == pytest.approx(from_file.p_fake, abs=1e-6)
    assert r.sha256 == from_file.sha256


def test_scan_accepts_a_loaded_model(image_folder, tiny_model):
    (r,) = scan(str(image_folder / "square.png"), model=tiny_model)
    assert r.ok and r.model == "tiny-npr" and r.tiles == 1


def test_unknown_model_raises(image_folder):
    with pytest.raises(FileNotFoundError):
        scan([image_folder], model="surely-not-a-model")

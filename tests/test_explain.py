"""Explanations: captum attribution maps (target-dependent, image-sized, stitched over tiles),
regions, heatmap rendering, the template narrative, `explain_image`, the published schema, and
`scan --explain` / `synthscan explain` — all on the tiny random model and generated images."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from conftest import TINY_CROP, TinyTilesConfig, noise_rgb
from synthscan.cli.main import app
from synthscan.detectors.base import Detector
from synthscan.detectors.tiling import make_tiles
from synthscan.explain import Explanation, explain_image
from synthscan.explain.attribution import METHODS, attribution_maps, stitch, top_regions
from synthscan.explain.render import HEAT_TABLE, colormap, map_image, overlay
from synthscan.explain.schema import ArtifactFinding, FamilyAttribution, Region, box_iou
from synthscan.explain.template import template_narrative
from synthscan.io import LoadedImage
from synthscan.scanning import Scanner

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "schemas" / "explanation.schema.json"


def smooth_rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Noise blurred a little: gives SLIC several superpixels, unlike pure noise."""
    small = noise_rgb(max(h // 8, 2), max(w // 8, 2), seed)
    smooth = np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC))
    return np.clip(smooth.astype(int) + noise_rgb(h, w, seed + 1) // 16, 0, 255).astype(np.uint8)


# --- attribution ------------------------------------------------------------------------------


def test_gradcam_depends_on_the_target(tiny_model):
    rgb = noise_rgb(TINY_CROP, TINY_CROP, seed=3)
    fake = attribution_maps(tiny_model.detector, rgb, ["gradcam"], target="fake")[0].values
    real = attribution_maps(tiny_model.detector, rgb, ["gradcam"], target="real")[0].values
    assert fake.max() > 0 and real.max() > 0
    # [-logit, logit] with ReLU'd CAM: the two targets highlight different pixels.
    assert np.abs(fake - real).mean() > 0.05
    assert np.corrcoef(fake.ravel(), real.ravel())[0, 1] < 0.5


@pytest.mark.parametrize("method", METHODS)
def test_every_method_gives_an_image_sized_map(tiny_model, method):
    rgb = smooth_rgb(TINY_CROP, TINY_CROP + 16)  # 2 overlapping tiles
    if method == "tile-scores":  # two crops that share 3/4 of their pixels score alike: a flat map
        rgb = np.hstack([rgb[:, :TINY_CROP], noise_rgb(TINY_CROP, TINY_CROP, seed=5)])
    maps = attribution_maps(tiny_model.detector, rgb, [method], target="fake")
    if all(m.values.max() == 0 for m in maps):  # no evidence for "fake" at all: then there is for "real"
        maps = attribution_maps(tiny_model.detector, rgb, [method], target="real")
    expected = len(tiny_model.detector.attribution_layers()) if method == "activations" else 1
    assert len(maps) == expected
    for m in maps:
        assert m.values.shape == rgb.shape[:2] and m.values.dtype == np.float32
        assert m.values.min() >= 0 and m.values.max() == pytest.approx(1.0)
        assert m.coverage == 1.0


def test_unknown_method_or_target_is_refused(tiny_model):
    rgb = noise_rgb(TINY_CROP, TINY_CROP)
    with pytest.raises(ValueError, match="unknown attribution method"):
        attribution_maps(tiny_model.detector, rgb, ["xray"])
    with pytest.raises(ValueError, match="target"):
        attribution_maps(tiny_model.detector, rgb, ["gradcam"], target="maybe")


def test_stitching_averages_overlaps_and_covers_a_large_non_square_image(tiny_model):
    h, w = 150, 200  # 3 x 4 tiles of 64 px, overlapping
    tiles = make_tiles(noise_rgb(h, w), tiny_model.input_policy)
    assert len(tiles.boxes) == 12
    # Tile i's map is the constant i + 1: each pixel must get the mean over the tiles covering it.
    maps = np.stack([np.full((TINY_CROP, TINY_CROP), i + 1.0) for i in range(len(tiles.boxes))])
    stitched, coverage = stitch(maps, tiles.boxes, (h, w))
    expected_sum, count = np.zeros((h, w)), np.zeros((h, w))
    for i, (x0, y0, x1, y1) in enumerate(tiles.boxes):
        expected_sum[y0:y1, x0:x1] += i + 1
        count[y0:y1, x0:x1] += 1
    assert coverage == 1.0 and count.min() >= 1 and count.max() > 1
    np.testing.assert_allclose(stitched, expected_sum / count, rtol=1e-6)

    cam = attribution_maps(tiny_model.detector, noise_rgb(h, w, seed=5), ["gradcam"])[0]
    assert cam.values.shape == (h, w) and cam.coverage == 1.0
    # Every tile contributed: no tile-sized block of the map is left empty.
    assert all(cam.values[y0:y1, x0:x1].max() > 0 for x0, y0, x1, y1 in tiles.boxes)


def test_stitching_reports_uncovered_pixels_and_crops_padding():
    boxes = [(0, 0, 40, 30)]  # a 64 px crop of which only 40 x 30 pixels are the image's
    crop_map = np.zeros((64, 64), np.float32)
    crop_map[:30, :40] = 1.0
    stitched, coverage = stitch(crop_map[None], boxes, (30, 40))
    assert coverage == 1.0 and stitched.min() == 1.0
    stitched, coverage = stitch(crop_map[None], boxes, (60, 40))
    assert coverage == pytest.approx(0.5) and stitched[30:].max() == 0.0


def test_top_regions_are_thresholded_components_strongest_first():
    values = np.zeros((100, 120), np.float32)
    values[10:20, 10:30] = 0.8  # small
    values[50:90, 60:110] = 0.9  # large: the most attribution mass
    values[0, 119] = 1.0  # a single pixel: noise, dropped
    regions = top_regions(values, source="occlusion")
    assert [r.box for r in regions] == [(60, 50, 110, 90), (10, 10, 30, 20)]
    assert regions[0].score == pytest.approx(0.9) and regions[0].source == "occlusion"
    assert top_regions(np.zeros((10, 10), np.float32)) == []


# --- rendering --------------------------------------------------------------------------------


def test_colormap_and_overlay():
    values = np.array([[0.0, 1.0]], np.float32)
    assert colormap(values).tolist() == [[HEAT_TABLE[0].tolist(), HEAT_TABLE[255].tolist()]]
    assert HEAT_TABLE[0].sum() < 20 and HEAT_TABLE[255].sum() > 600  # dark to bright
    rgb = np.full((1, 2, 3), 100, np.uint8)
    blended = overlay(values, rgb)
    assert blended[0, 0].tolist() == [100, 100, 100]  # no attribution: the image unchanged
    assert blended[0, 1].tolist() != [100, 100, 100]


def test_map_image_embeds_or_writes_a_png(tmp_path):
    picture = noise_rgb(30, 50)
    embedded = map_image(picture, kind="gradcam", title="t")
    decoded = Image.open(io.BytesIO(base64.b64decode(embedded.png_base64)))
    assert decoded.format == "PNG" and decoded.size == (50, 30) == (embedded.width, embedded.height)
    assert np.array_equal(np.asarray(decoded), picture)
    written = map_image(picture, kind="gradcam", title="t", mode="dir", out_dir=tmp_path, name="a.gradcam")
    assert written.png_base64 is None and Path(written.path) == tmp_path / "a.gradcam.png"
    assert np.array_equal(np.asarray(Image.open(written.path)), picture)


# --- template narrative -----------------------------------------------------------------------


def test_template_names_every_part_of_the_image():
    from synthscan.explain.template import where

    size = (300, 300)
    assert where((0, 0, 90, 90), size).endswith("(upper left of the image)")
    assert where((100, 200, 200, 300), size).endswith("(lower centre of the image)")
    assert where((0, 100, 90, 200), size).endswith("(centre left of the image)")
    assert where((100, 100, 200, 200), size).endswith("(centre of the image)")
    assert where((0, 0, 10, 10), None) == "pixels 0,0-10,10"


def test_template_cites_only_the_measured_evidence():
    regions = [Region(box=(0, 0, 50, 40), score=0.83)]
    artifacts = [
        ArtifactFinding(id="grid-peaks", name="Grid peaks", group="frequency", score=0.91, evidence="measured",
                        explanation="periodic peaks at 1/8 cycles per pixel", box=(10, 10, 60, 60)),
        ArtifactFinding(id="over-smoothing", name="Over-smoothing", group="texture", score=0.2,
                        evidence="measured", explanation="detail energy is normal"),
    ]
    family = FamilyAttribution(probabilities={"gan": 0.7, "diffusion": 0.2, "autoregressive": 0.05, "unknown": 0.05},
                               top="gan", model="test")
    n = template_narrative(0.87, "ai-generated", 0.5, regions, artifacts, family, size=(200, 100))
    assert n.source == "template"
    for fact in ("87%", "50%", "ai-generated", "0,0-50,40", "upper left", "0.83", "Grid peaks", "0.91",
                 "periodic peaks at 1/8 cycles per pixel", "gan", "0.70"):
        assert fact in n.summary, fact
    assert "Over-smoothing" not in n.summary  # below the citing threshold
    assert [a.id for a in n.artifacts] == ["grid-peaks"]
    assert n == template_narrative(0.87, "ai-generated", 0.5, regions, artifacts, family, size=(200, 100))

    plain = template_narrative(0.1, "real", 0.5, [], [], family)
    assert "below" in plain.summary and "no distinct region" in plain.summary
    assert "No artifact was measured strongly enough" in plain.summary
    assert "gan" not in plain.summary  # a family is not suggested for an image judged real
    saturated = ArtifactFinding(id="colour-distribution-anomaly", name="Colour", group="colour", score=0.95,
                                evidence="measured", explanation="saturated", box=(150, 0, 200, 50), extent="image")
    cited = template_narrative(0.87, "ai-generated", 0.5, regions, [saturated, *artifacts], size=(200, 100))
    assert [a.id for a in cited.artifacts] == ["grid-peaks", "colour-distribution-anomaly"]  # regions first
    assert "(whole image; strongest at" in cited.summary
    assert "artifact" not in template_narrative(0.1, "real", 0.5).summary  # not measured: silent


# --- explain_image, schema, scanner and CLI ----------------------------------------------------


def validate(explanation: dict) -> None:
    jsonschema.validate(explanation, json.loads(SCHEMA_FILE.read_text()))


def test_published_schema_is_the_models_schema():
    assert json.loads(SCHEMA_FILE.read_text()) == Explanation.model_json_schema()


def test_explain_image_end_to_end(tiny_model):
    rgb = noise_rgb(100, 150, seed=7)
    e = explain_image(tiny_model, rgb, methods=("gradcam", "saliency"))
    assert [m.kind for m in e.maps][:2] == ["gradcam", "saliency"]
    assert e.maps[0].png_base64 and (e.maps[0].width, e.maps[0].height) == (150, 100)
    assert e.regions and all(r.source == "gradcam" for r in e.regions)
    assert e.narrative.source == "template" and e.seconds > 0
    image = LoadedImage(path="x", rgb=rgb, format="PNG", original_mode="RGB", sha256="", n_frames=1)
    p_fake = Scanner(tiny_model).scan_images([image])[0].p_fake
    assert f"{p_fake:.0%}" in e.narrative.summary
    assert e.spectrum is not None and e.family is not None and e.warnings == []
    validate(e.model_dump(mode="json"))
    Explanation.model_validate_json(e.model_dump_json())


def test_explain_image_without_pictures_still_explains(tiny_model, tmp_path):
    e = explain_image(tiny_model, noise_rgb(64, 64), maps="none")
    assert e.maps == [] and e.narrative is not None
    with pytest.raises(ValueError, match="maps_dir"):
        explain_image(tiny_model, noise_rgb(64, 64), maps="dir")
    with pytest.raises(ValueError, match="uint8"):
        explain_image(tiny_model, np.zeros((64, 64)), maps="none")


def test_scanner_attaches_explanations_and_keeps_errors(tiny_model, image_folder, image_specs):
    scanner = Scanner(tiny_model, explain={"maps": "none"})
    results = {Path(r.path).name: r for r in scanner.scan_paths(sorted(str(p) for p in image_folder.iterdir()))}
    for name in image_specs["good"]:
        assert isinstance(results[name].explanation, Explanation)
        validate(results[name].explanation.model_dump(mode="json"))
    for name, code in image_specs["bad"].items():
        assert results[name].error.code == code and results[name].explanation is None
    assert Scanner(tiny_model).scan_images([]) == []
    plain = next(Scanner(tiny_model).scan_paths([str(image_folder / "square.png")]))
    assert plain.explanation is None
    # An explanation that fails leaves the verdict and says why.
    broken = next(Scanner(tiny_model, explain={"methods": ("xray",)}).scan_paths([str(image_folder / "square.png")]))
    assert broken.ok and broken.verdict and broken.explanation is None
    assert [w.code for w in broken.warnings] == ["explain-failed"] and "xray" in broken.warnings[0].message


ENV = {"COLUMNS": "400", "NO_COLOR": "1"}


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env=ENV, catch_exceptions=False)


def test_cli_explain_json_maps_dir_and_errors(tiny_model_path, image_folder, tmp_path):
    maps_dir = tmp_path / "maps"
    good, bad = image_folder / "big.png", image_folder / "notes.jpg"
    r = run("explain", good, bad, "--model", tiny_model_path, "--method", "gradcam", "--method", "activations",
            "--maps-dir", maps_dir, "-f", "json")
    assert r.exit_code == 1
    records = {Path(rec["path"]).name: rec for rec in json.loads(r.stdout)}
    assert records["notes.jpg"]["error"]["code"] == "not-an-image"
    explanation = records["big.png"]["explanation"]
    validate(explanation)
    paths = [Path(m["path"]) for m in explanation["maps"]]
    assert paths and all(p.parent == maps_dir and p.exists() for p in paths)
    assert Image.open(paths[0]).size == (200, 150)

    table = run("explain", good, "--model", tiny_model_path)
    assert table.exit_code == 0 and "gradcam" in table.stdout and "probability" in table.stdout
    assert run("explain", good, "--model", tiny_model_path, "--method", "xray").exit_code == 2


def test_cli_scan_explain(tiny_model_path, image_folder):
    r = run("scan", image_folder / "photo.jpg", "--model", tiny_model_path, "--explain", "-f", "json")
    assert r.exit_code == 0
    (record,) = json.loads(r.stdout)
    validate(record["explanation"])
    assert record["explanation"]["maps"] == [] and record["explanation"]["narrative"]["summary"]
    assert "explanation" not in json.loads(run("scan", image_folder / "photo.jpg", "--model", tiny_model_path,
                                               "-f", "json").stdout)[0]


class BrightnessDetector(Detector):
    """A detector whose logit is the mean brightness: its evidence is exactly the bright pixels."""

    name = "test-brightness"
    Config = TinyTilesConfig

    def __init__(self, config=None):
        super().__init__(config)
        self.features = torch.nn.Conv2d(3, 1, kernel_size=1, bias=False)
        torch.nn.init.constant_(self.features.weight, 1.0)

    def forward(self, x):
        return self.features(x).mean((1, 2, 3))

    def attribution_layers(self):
        return {"features": self.features}


def test_gradcam_regions_find_the_evidence_across_tiles():
    rgb = np.zeros((100, 150, 3), np.uint8)
    rgb[30:80, 50:110] = 255  # spans several of the 64 px tiles
    cam = attribution_maps(BrightnessDetector(), rgb, ["gradcam"])[0]
    (region,) = top_regions(cam.values)
    assert region.box == (50, 30, 110, 80) and region.score == pytest.approx(1.0)


class FailingNarrator:
    def narrate(self, image_rgb, evidence, p_fake, verdict, provenance_note=None):
        from synthscan.explain.vlm import NarrationError

        raise NarrationError("no answer validated after 3 attempts")


class EchoNarrator:
    def narrate(self, image_rgb, evidence, p_fake, verdict, provenance_note=None):
        from synthscan.explain.schema import Narrative

        return Narrative(summary=f"vlm saw {len(evidence.regions)} region(s), p={p_fake:.2f}", source="vlm:echo")


def test_narrator_replaces_the_template_and_falls_back_when_it_fails(tiny_model):
    rgb = noise_rgb(64, 64, seed=3)
    e = explain_image(tiny_model, rgb, maps="none", narrator=EchoNarrator())
    assert e.narrative.source == "vlm:echo" and e.narrative.summary.startswith(f"vlm saw {len(e.regions)} region")
    e = explain_image(tiny_model, rgb, maps="none", narrator=FailingNarrator())
    assert e.narrative.source == "template"
    assert any("never" in w or "no answer validated" in w for w in e.warnings)


def test_cli_scan_explain_report_and_option_checks(tiny_model_path, image_folder, tmp_path):
    report = tmp_path / "scan.html"
    r = run("scan", image_folder / "photo.jpg", image_folder / "notes.jpg", "--model", tiny_model_path, "--explain",
            "--report", report, "-f", "jsonl")
    assert r.exit_code == 1 and report.exists()
    html = report.read_text()
    assert "photo.jpg" in html and "not-an-image" in html and "Grad-CAM" in html
    # The report embeds the maps, so the page needs no other file.
    assert "data:image/png;base64," in html
    r = run("scan", image_folder / "photo.jpg", "--model", tiny_model_path, "--narrator", "openai:http://x/v1#m")
    assert r.exit_code == 2 and "--explain" in r.output
    r = run("explain", image_folder / "photo.jpg", "--model", tiny_model_path, "--report", tmp_path / "e.html")
    assert r.exit_code == 0 and (tmp_path / "e.html").exists()


def test_table_output_shows_brackets_literally(tiny_model_path, tmp_path):
    # Rich markup must not eat text such as "[explain]" in a message or "[red]" in a file name.
    path = tmp_path / "photo [red].png"
    Image.fromarray(noise_rgb(64, 64)).save(path)
    r = run("explain", path, "--model", tiny_model_path)
    assert r.exit_code == 0 and "photo [red].png" in r.stdout
    r = run("scan", path, "--model", tiny_model_path)
    assert r.exit_code == 0 and "photo [red].png" in r.stdout


def test_a_detector_without_layers_or_gradients_still_gets_the_other_evidence(tmp_path):
    from synthscan.detectors.base import CalibratedModel, ModelInfo
    from synthscan.detectors.registry import get_detector_class

    cls = get_detector_class("texture-gbm")
    detector = cls(cls.Config())
    rng = np.random.default_rng(0)
    smooth = [np.full((64, 64, 3), 120, np.uint8) + rng.integers(0, 3, (64, 64, 3), dtype=np.uint8) for _ in range(6)]
    noisy = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(6)]
    detector.fit_arrays(smooth + noisy, np.array([0] * 6 + [1] * 6))
    model = CalibratedModel(detector, ModelInfo(detector="texture-gbm", name="tgbm"))
    e = explain_image(model, noise_rgb(96, 96), methods=("gradcam", "saliency"))
    assert e.narrative is not None and e.spectrum is not None
    assert any("gradcam, saliency cannot explain" in w for w in e.warnings)
    assert [m.kind for m in e.maps][:2] == ["tile-scores", "residual"]  # its tile-score map, then trace views


def test_box_iou():
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0  # touching, not overlapping
    assert box_iou((3, 3, 3, 3), (3, 3, 3, 3)) == 0.0  # empty boxes

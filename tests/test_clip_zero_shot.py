"""CLIP/SigLIP zero-shot artifact scoring with tiny random models built offline (no downloads)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from synthscan.explain.clip_zero_shot import (
    ClipArtifactScorer,
    LabelsError,
    Thresholds,
    calibrate_on_labels,
    calibrate_thresholds,
    read_artifact_labels,
    score_artifacts,
)
from tiny_hf import tiny_clip, tiny_siglip

ARTIFACTS = [
    ("malformed-text", "Illegible or malformed text and symbols", "mechanical"),
    ("bad-hands", "Anatomically incorrect hands", "anatomy"),
    ("glossy", "Unnaturally glossy surfaces", "texture"),
]
BOXES = [(0, 0, 40, 30), (20, 16, 64, 48)]


@pytest.fixture(scope="module")
def scorer() -> ClipArtifactScorer:
    torch.set_num_threads(1)
    model, processor = tiny_clip()
    return ClipArtifactScorer("tiny-clip", model=model, processor=processor)


@pytest.fixture
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)


def test_view_scores_cover_image_and_crops(scorer, rgb):
    scores = scorer.view_scores(rgb, ARTIFACTS, BOXES)
    assert scores.shape == (1 + len(BOXES), len(ARTIFACTS))
    assert ((scores > 0) & (scores < 1)).all()
    assert np.ptp(scores[0]) > 0  # the prompts differ, so do their scores
    # A crop's row is the score of that crop scored on its own.
    x0, y0, x1, y1 = BOXES[1]
    alone = scorer.view_scores(np.ascontiguousarray(rgb[y0:y1, x0:x1]), ARTIFACTS)
    np.testing.assert_allclose(scores[2], alone[0], atol=1e-5)
    assert not np.allclose(scores[0], scores[2], atol=1e-5)


def test_findings_follow_thresholds_and_best_view(scorer, rgb):
    scores = scorer.view_scores(rgb, ARTIFACTS, BOXES)
    everything = scorer.findings(rgb, ARTIFACTS, BOXES, Thresholds(model_id="tiny-clip", default=0.0))
    assert [f.id for f in everything] == [ARTIFACTS[j][0] for j in np.argsort(-scores.max(axis=0))]
    view_boxes = [None, *BOXES]
    for f in everything:
        j = [a[0] for a in ARTIFACTS].index(f.id)
        assert f.evidence == "model" and f.group == ARTIFACTS[j][2]
        assert f.score == pytest.approx(scores[:, j].max(), abs=1e-6)
        assert f.box == view_boxes[int(scores[:, j].argmax())]
        assert "tiny-clip" in f.explanation
    assert scorer.findings(rgb, ARTIFACTS, BOXES, Thresholds(model_id="x", default=1.0)) == []
    # A per-artifact threshold just above one artifact's best score removes only that artifact.
    first = ARTIFACTS[0][0]
    tight = Thresholds(model_id="x", default=0.0, per_artifact={first: float(scores[:, 0].max()) + 1e-4})
    assert {f.id for f in scorer.findings(rgb, ARTIFACTS, BOXES, tight)} == {a[0] for a in ARTIFACTS[1:]}


def test_loads_a_saved_model_directory(tmp_path, scorer, rgb):
    scorer.model.save_pretrained(tmp_path)
    scorer.processor.save_pretrained(tmp_path)
    loaded = ClipArtifactScorer(str(tmp_path))
    np.testing.assert_allclose(loaded.view_scores(rgb, ARTIFACTS), scorer.view_scores(rgb, ARTIFACTS), atol=1e-6)


def test_bad_box_is_rejected(scorer, rgb):
    with pytest.raises(ValueError, match="outside"):
        scorer.view_scores(rgb, ARTIFACTS, [(10, 10, 80, 20)])


def test_siglip_scores(rgb):
    model, processor = tiny_siglip()
    scores = ClipArtifactScorer("tiny-siglip", model=model, processor=processor).view_scores(rgb, ARTIFACTS, BOXES[:1])
    assert scores.shape == (2, len(ARTIFACTS)) and np.isfinite(scores).all() and np.ptp(scores) > 0


def test_calibration_picks_max_f1_thresholds_and_round_trips(tmp_path, scorer, rgb):
    rng = np.random.default_rng(1)
    present = rng.random((40, 3)) < 0.5
    present[:, 2] = False  # no positive example: keeps the default
    scores = np.where(present, rng.uniform(0.6, 0.9, (40, 3)), rng.uniform(0.1, 0.4, (40, 3)))
    scores[0, 1], present[0, 1] = 0.95, False  # one confident false positive above every positive
    thresholds = calibrate_thresholds(scores, present, [a[0] for a in ARTIFACTS], "tiny-clip")
    t0 = thresholds.per_artifact["malformed-text"]
    assert 0.4 < t0 <= scores[present[:, 0], 0].min()  # separates the classes perfectly
    assert 0.4 < thresholds.per_artifact["bad-hands"] <= 0.9  # the outlier does not drag it up to 0.95
    assert "glossy" not in thresholds.per_artifact and thresholds.for_artifact("glossy") == 0.5

    path = thresholds.save(tmp_path / "thresholds.json")
    assert Thresholds.load(path) == thresholds
    found = score_artifacts(rgb, ARTIFACTS, boxes=BOXES, thresholds=path, scorer=scorer)
    best = scorer.view_scores(rgb, ARTIFACTS, BOXES).max(axis=0)
    expected = {a[0] for a, s in zip(ARTIFACTS, best) if s >= thresholds.for_artifact(a[0])}
    assert {f.id for f in found} == expected


def test_calibration_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="disagree"):
        calibrate_thresholds(np.zeros((4, 2)), np.zeros((4, 3), bool), ["a", "b"], "m")


def test_default_artifacts_need_the_taxonomy(monkeypatch, scorer, rgb):
    monkeypatch.setitem(sys.modules, "synthscan.explain.taxonomy", None)
    with pytest.raises(RuntimeError, match="taxonomy"):
        score_artifacts(rgb, scorer=scorer)


def test_default_artifacts_are_the_semantic_taxonomy_entries(scorer, rgb):
    taxonomy = pytest.importorskip("synthscan.explain.taxonomy")
    semantic = [a for a in taxonomy.load_taxonomy().artifacts if "S" in a.evidence]
    found = score_artifacts(rgb, boxes=BOXES[:1], scorer=scorer, thresholds=Thresholds(model_id="x", default=0.0))
    assert sorted(f.id for f in found) == sorted(a.id for a in semantic)


def labelled_folder(tmp_path) -> Path:
    """Eight noise images, half labelled with texture-repetition and two with boundary-glow, and
    one unreadable file, listed in labels.csv."""
    from PIL import Image

    rows = ["path,artifacts"]
    for i in range(8):
        rgb = np.random.default_rng(i).integers(0, 256, (40 + 4 * i, 48, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(tmp_path / f"im{i}.png")
        ids = (["texture-repetition"] if i % 2 else []) + (["boundary-glow"] if i < 2 else [])
        rows.append(f"im{i}.png,{';'.join(ids)}")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    rows.append("broken.png,texture-repetition")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    return tmp_path / "labels.csv"


def test_calibration_on_a_labels_csv_scores_each_image_whole(tmp_path, scorer):
    from synthscan.explain.taxonomy_choices import taxonomy_choices
    from synthscan.io.loading import load_image

    labels = labelled_folder(tmp_path)
    thresholds, failed = calibrate_on_labels(labels, scorer=scorer)
    assert [Path(p).name for p, _ in failed] == ["broken.png"] and "not-an-image" in failed[0][1]
    assert set(thresholds.per_artifact) == {"texture-repetition", "boundary-glow"}
    assert thresholds.fit["texture-repetition"]["positives"] == 4 and thresholds.fit["boundary-glow"]["negatives"] == 6
    # The same as fitting the scores of the whole images by hand.
    artifacts = taxonomy_choices("S")
    ids = [a[0] for a in artifacts]
    rows = [r for r in read_artifact_labels(labels) if not r[0].endswith("broken.png")]
    scores = np.array([scorer.view_scores(load_image(path).rgb, artifacts)[0] for path, _ in rows])
    present = np.array([[i in labelled for i in ids] for _, labelled in rows])
    assert thresholds == calibrate_thresholds(scores, present, ids, "tiny-clip")


@pytest.mark.parametrize("text, message", [
    ("file,artifacts\na.png,\n", "needs the columns"),
    ("path,artifacts\na.png,bad-hands-typo\n", "not a semantic"),
    ("path,artifacts\na.png,over-smoothing\n", "not a semantic"),  # measured (M), not scored by CLIP
    ("path,artifacts\n", "no rows"),
])
def test_bad_labels_files_say_what_is_wrong(tmp_path, text, message):
    (tmp_path / "labels.csv").write_text(text)
    with pytest.raises(LabelsError, match=message):
        read_artifact_labels(tmp_path / "labels.csv")


def test_cli_writes_thresholds_that_explain_then_uses(tmp_path, scorer, tiny_model_path):
    from typer.testing import CliRunner

    from synthscan.cli.main import app

    model_dir = tmp_path / "tiny-clip"
    scorer.model.save_pretrained(model_dir)
    scorer.processor.save_pretrained(model_dir)
    labels = labelled_folder(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["clip-thresholds", str(labels), "--clip", str(model_dir), "-o", str(tmp_path / "t.json")])
    assert result.exit_code == 1, result.output  # one file was skipped
    assert "broken.png" in result.output and "texture-repetition" in result.output
    thresholds = Thresholds.load(tmp_path / "t.json")
    assert thresholds.model_id == str(model_dir) and set(thresholds.per_artifact) == {"texture-repetition", "boundary-glow"}

    def clip_findings(thresholds_file: Path) -> list[dict]:
        result = runner.invoke(app, ["explain", str(tmp_path / "im3.png"), "--model", str(tiny_model_path), "-f", "json",
                                     "--clip", str(model_dir), "--clip-thresholds", str(thresholds_file)])
        assert result.exit_code == 0, result.output
        record = json.loads(result.stdout)[0]
        return [a for a in record["explanation"]["artifacts"] if a["evidence"] == "model"]

    for found in clip_findings(tmp_path / "t.json"):
        assert found["score"] >= thresholds.for_artifact(found["id"])
    Thresholds(model_id=str(model_dir), default=0.0).save(tmp_path / "zero.json")
    from synthscan.explain.taxonomy_choices import taxonomy_choices

    semantic = {a[0] for a in taxonomy_choices("S")}
    assert {a["id"] for a in clip_findings(tmp_path / "zero.json")} == semantic  # all pass a zero threshold

    bad = tmp_path / "bad.csv"
    bad.write_text("path\nim0.png\n")
    result = runner.invoke(app, ["clip-thresholds", str(bad), "--clip", str(model_dir), "-o", str(tmp_path / "u.json")])
    assert result.exit_code == 2 and "needs the columns" in result.output and not (tmp_path / "u.json").exists()


@pytest.mark.parametrize("command", [["explain"], ["scan", "--explain"]])
def test_cli_clip_model_that_cannot_load_is_a_usage_error(tmp_path, tiny_model_path, command):
    from typer.testing import CliRunner

    from synthscan.cli.main import app

    image = labelled_folder(tmp_path).parent / "im3.png"
    missing = str(tmp_path / "no-such-clip")  # neither a folder nor a valid hub id: fails without the network
    result = CliRunner().invoke(app, [*command, str(image), "--model", str(tiny_model_path), "--clip", missing],
                                env={"COLUMNS": "400"})
    # Loaded once before any image, so a folder of images does not retry the hub once per file.
    assert result.exit_code == 2, result.output
    assert f"cannot load the pretrained backbone {missing!r}" in result.output and "im3.png" not in result.output

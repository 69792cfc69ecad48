"""CLIP/SigLIP zero-shot artifact scoring with tiny random models built offline (no downloads)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from synthscan.explain.clip_zero_shot import (
    ClipArtifactScorer,
    Thresholds,
    calibrate_thresholds,
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

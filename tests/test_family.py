"""Generator-family attribution: features, training, JSON round trip and the unknown cut."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from synthscan.explain import family
from synthscan.fit.family import evaluate, save, train
from synthscan.explain.schema import FamilyAttribution


def _image(kind: str, seed: int) -> np.ndarray:
    """Two synthetic "families": nearest-up-sampled noise ("gan") vs smooth noise ("diffusion")."""
    rng = np.random.default_rng(seed)
    if kind == "gan":
        rgb = np.repeat(np.repeat(rng.normal(128, 25, (64, 64, 3)), 2, 0), 2, 1)
    else:
        rgb = ndimage.gaussian_filter(rng.normal(128, 60, (128, 128, 3)), (1.5, 1.5, 0)) + rng.normal(0, 1, (128, 128, 3))
    return rgb.clip(0, 255).astype(np.uint8)


def _data(seeds):
    rgbs = [_image(kind, s) for s in seeds for kind in ("gan", "diffusion")]
    return family.feature_matrix(rgbs), [kind for _ in seeds for kind in ("gan", "diffusion")], rgbs


def test_features_have_a_fixed_length():
    assert family.features(_image("gan", 0)).shape == family.features(np.zeros((40, 70, 3), np.uint8)).shape == (70,)


def test_trained_model_separates_two_synthetic_families_and_round_trips(tmp_path):
    x, y, _ = _data(range(8))
    model = train(x, y)
    x_val, y_val, rgbs = _data(range(100, 104))
    report = evaluate(model, x_val, y_val)
    assert report["gan"]["accuracy"] == report["diffusion"]["accuracy"] == 1.0

    save(model, tmp_path / "m.json")
    loaded = family.FamilyModel.model_validate(json.loads((tmp_path / "m.json").read_text()))
    result = loaded.attribute(rgbs[0])
    assert isinstance(result, FamilyAttribution) and result.top == "gan"
    assert set(result.probabilities) == {"gan", "diffusion"}
    assert abs(sum(result.probabilities.values()) - 1) < 1e-3


def test_unknown_below_the_cut():
    x, y, rgbs = _data(range(4))
    model = train(x, y)
    model.unknown_cut = 1.01  # no probability reaches it
    assert model.attribute(rgbs[0]).top == "unknown"


def test_bundled_model_gives_probabilities_over_its_classes():
    result = family.attribute_family(_image("diffusion", 0))
    model = family.bundled_model()
    assert model is not None
    val = model.training["val"]  # the record of how it was fitted: one entry per class, consistent
    per_class = [val[c]["accuracy"] for c in model.classes]
    assert val["balanced_accuracy"] == pytest.approx(np.mean(per_class), abs=1e-3)
    assert set(result.probabilities) == set(model.classes) and result.top in model.classes + ["unknown"]

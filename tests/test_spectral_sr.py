"""spectral-dae's optional super-resolution stage: none / bicubic / learned (ESPCN-style)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from synthscan.data.augment import AugmentConfig
from synthscan.data.datasets import read_dataset
from synthscan.detectors.base import CalibratedModel, ModelInfo
from synthscan.detectors.spectral_dae import SpectralDAEConfig, SpectralDAEDetector, bicubic_upscale
from synthscan.train.trainer import TrainConfig, fit

TINY = {"dae_widths": (4, 8), "cnn_widths": (4, 8, 8), "hidden": 8, "sr_features": 8,
        "input": {"mode": "tiles", "crop_size": 32}}


def tiny(sr: str, scale: int = 2) -> SpectralDAEDetector:
    torch.manual_seed(0)
    return SpectralDAEDetector(SpectralDAEConfig.model_validate({**TINY, "sr": sr, "sr_scale": scale})).eval()


def smooth_images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Natural-ish images: random low-resolution colours blown up smoothly, plus a sharp edge."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, size // 8, size // 8, generator=g)
    x = bicubic_upscale(low, 8).clamp(0, 1)
    x[:, :, :, size // 2 :] *= 0.5
    return x


@pytest.mark.parametrize(("sr", "scale", "side"), [("none", 2, 32), ("bicubic", 2, 64), ("learned", 2, 64), ("learned", 4, 128)])
def test_forward_with_each_sr_option(sr, scale, side):
    det = tiny(sr, scale)
    x = smooth_images(2, 32)
    assert det.upscale(x).shape == (2, 3, side, side)
    assert det.spectrum(x).shape == (2, 3, side, side)
    logits = det(x)
    assert logits.shape == (2,) and torch.isfinite(logits).all()
    assert (det.sr is not None) == (sr == "learned")
    assert any(k.startswith("sr.") for k in det.state_dict()) == (sr == "learned")


def test_untrained_learned_sr_is_the_bicubic_fallback():
    x = smooth_images(2, 32)
    assert torch.allclose(tiny("learned").upscale(x), tiny("bicubic").upscale(x), atol=1e-6)
    assert torch.equal(tiny("none").upscale(x), x)


def test_sr_loss_decreases_below_bicubic():
    det = tiny("learned").train()
    x = smooth_images(8, 32, seed=1)
    opt = torch.optim.Adam(det.sr.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = det.sr_loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses[::8]


def test_sr_config_is_validated():
    with pytest.raises(ValueError):
        SpectralDAEConfig(sr="srgan")
    with pytest.raises(ValueError):
        SpectralDAEConfig(sr="bicubic", sr_scale=1)


@pytest.mark.parametrize("sr", ["bicubic", "learned"])
def test_save_load_round_trip(tmp_path, sr):
    det = tiny(sr)
    with torch.no_grad():  # make the SR weights non-trivial so the round trip is meaningful
        for p in det.parameters():
            p.add_(0.01 * torch.randn_like(p))
    json_path = CalibratedModel(det, ModelInfo(detector="spectral-dae", name="t")).save(tmp_path / "t")
    assert json.loads(json_path.read_text())["config"]["sr"] == sr
    loaded = CalibratedModel.load(json_path)
    x = smooth_images(2, 32)
    assert loaded.detector.config.sr == sr
    assert torch.equal(loaded.logits(x), CalibratedModel(det, loaded.info).logits(x))


def test_training_runs_the_sr_stage_before_the_dae_on_reals_then_freezes_both(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for label in ("REAL", "FAKE"):
            for i in range(3):
                path = tmp_path / "data" / split / label / f"{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path)
    samples = read_dataset(tmp_path / "data")
    det = tiny("learned")
    before = [p.clone() for p in det.sr.parameters()]
    cfg = TrainConfig(epochs=1, batch_size=4, pretrain_epochs=2, augment=AugmentConfig(crop_size=32))
    fit(det, [s for s in samples if s.split == "train"], [s for s in samples if s.split == "val"], cfg, tmp_path / "run",
        progress=lambda _: None)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [(r.get("stage"), r.get("epoch")) for r in log] == [("sr", 1), ("sr", 2), ("dae", 1), ("dae", 2), (None, 1)]
    assert any(not torch.equal(a, b) for a, b in zip(before, det.sr.parameters()))
    assert not any(p.requires_grad for p in [*det.sr.parameters(), *det.dae.parameters()])

"""zed-style: the causal pixel predictor, its coding-cost features and its two training stages."""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image, ImageFilter

from synthscan.data.augment import AugmentConfig
from synthscan.detectors import CalibratedModel, get_detector_class
from synthscan.detectors.zed_style import LOG_SCALE_RANGE, ZedStyleDetector, logistic_entropy_table
from synthscan.train.recipe import train_detector
from synthscan.train.trainer import TrainConfig


def small(**overrides) -> ZedStyleDetector:
    torch.manual_seed(0)
    return ZedStyleDetector(ZedStyleDetector.Config.model_validate({**ZedStyleDetector.small_config, **overrides}))


def test_prediction_sees_only_pixels_above_and_to_the_left():
    det = ZedStyleDetector().eval()  # the shipped sizes: 7x7 mask "A", then 3x3 mask "B" layers
    x = torch.rand(1, 3, 24, 24, requires_grad=True)
    mean, log_s = det.predict(x * 255)
    (mean[0, :, 12, 12].sum() + log_s[0, :, 12, 12].sum()).backward()
    grad = x.grad[0].abs().sum(0)
    assert grad[12, 12:].sum() == 0 and grad[13:].sum() == 0  # itself, to its right, rows below
    assert grad[12, :12].sum() > 0 and grad[:12].sum() > 0


def test_entropy_table_matches_the_exact_sum_over_bins():
    """The tabulated entropy against 256 explicit bins, for a mean well inside 0-255."""
    log_s, bits = logistic_entropy_table()
    edges = torch.arange(-1000, 1001, dtype=torch.float64) + 0.5
    det = ZedStyleDetector()
    for s in (0.3, 1.0, 4.0, 20.0):
        exact = []
        for offset in np.linspace(0, 1, 16, endpoint=False):
            cdf = torch.sigmoid((edges - 128 - offset) / s)
            p = (cdf[1:] - cdf[:-1]).clamp(min=1e-300)
            exact.append(float(-(p * p.log2()).sum()))
        table = float(det.expected_bits(torch.tensor([np.log(s)], dtype=torch.float32))[0])
        assert abs(table - np.mean(exact)) < 0.02, (s, table, np.mean(exact))
    # A wide logistic approaches the continuous entropy log2(s) + 2 / ln 2 bits.
    wide = float(det.expected_bits(torch.tensor([3.0]))[0])
    assert abs(wide - (3.0 + 2) / np.log(2)) < 0.01
    assert log_s[0] == LOG_SCALE_RANGE[0] and log_s[-1] == LOG_SCALE_RANGE[1]


def test_bits_are_a_proper_distribution_over_the_256_values():
    det = ZedStyleDetector()
    values = torch.arange(256, dtype=torch.float32).view(1, 1, 1, 256)
    for mean, log_s in ((3.0, 0.0), (128.4, 1.5), (250.0, 3.0)):
        bits = det.bits(values, torch.full_like(values, mean), torch.full_like(values, log_s))
        assert abs(float((2.0 ** -bits).sum()) - 1) < 1e-4


def test_pretraining_on_smooth_images_lowers_their_coding_cost_and_moves_nothing_else():
    rng = np.random.default_rng(0)
    smooth = np.stack([np.asarray(Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
                                  .filter(ImageFilter.GaussianBlur(2))) for _ in range(8)])
    x = torch.from_numpy(smooth).permute(0, 3, 1, 2).float() / 255
    det = small().train()
    head_before = {k: v.clone() for k, v in det.head.state_dict().items()}
    optimiser = torch.optim.Adam(det.predictor.parameters(), lr=1e-2)
    losses = []
    for step in range(40):
        torch.manual_seed(step)
        loss = det.stage_loss("predictor", x)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    assert all(torch.equal(head_before[k], v) for k, v in det.head.state_dict().items())
    assert not {id(p) for p in det.predictor.parameters()} & {id(p) for p in det.trainable_parameters()}


def test_features_are_finite_per_level_and_gap_is_nll_minus_entropy():
    det = small(levels=3).eval()
    with torch.no_grad():
        f = det.features(torch.rand(2, 3, 32, 32))
    assert f.shape == (2, 9) and torch.isfinite(f).all()
    nll, h, gap = f[:, 0::3], f[:, 1::3], f[:, 2::3]
    assert torch.allclose(gap, nll - h, atol=1e-5)


def test_values_at_0_and_255_are_left_out_of_the_means():
    """A saturated half changes nothing: only mid-range values count."""
    det = small().eval()
    x = torch.rand(1, 3, 32, 32) * 0.5 + 0.25
    saturated = x.clone()
    saturated[..., 16:, :] = 1.0
    with torch.no_grad():
        kept = det.features(x[..., :16, :])
        with_saturation = det.features(saturated)
    # The first level's means come from the same top rows either way (the causal context of the
    # top half does not reach the bottom half).
    assert torch.allclose(kept[:, :3], with_saturation[:, :3], atol=1e-4)


def test_zed_trains_through_the_recipe_with_a_frozen_predictor(tmp_path):
    rng = np.random.default_rng(3)
    root = tmp_path / "data"
    root.mkdir()
    rows = ["path,label,split"]
    for i in range(12):
        noise = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
        img = noise if i % 2 else np.asarray(Image.fromarray(noise).filter(ImageFilter.GaussianBlur(2)))
        Image.fromarray(img).save(root / f"{i}.png")
        rows.append(f"{i}.png,{'fake' if i % 2 else 'real'},{'val' if i < 4 else 'train'}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    cfg = TrainConfig(epochs=2, batch_size=4, pretrain_epochs=1,
                      augment=AugmentConfig(crop_size=32, jpeg_p=0, blur_p=0))
    model = train_detector("zed-style", root / "manifest.csv", tmp_path / "out", name="tiny-zed", track=None,
                           train_config=cfg, detector_config=get_detector_class("zed-style").small_config,
                           progress=lambda _: None)
    log = [json.loads(line) for line in (tmp_path / "out" / "run" / "log.jsonl").read_text().splitlines()]
    assert log[0]["stage"] == "predictor" and np.isfinite(log[0]["loss"])
    loaded = CalibratedModel.load(tmp_path / "out" / "tiny-zed.json")
    x = torch.rand(2, 3, 32, 32)
    assert loaded.info.detector == "zed-style"
    assert torch.equal(loaded.logits(x), model.logits(x))

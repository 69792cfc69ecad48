"""Detectors trained from scratch: freqnet-wavelet, mlp, lenet, resnet18-scratch, texture-gbm, spai-style.

Every model here is tiny and random-weight (or fitted on a few synthetic images made here).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from synthscan.data.augment import AugmentConfig
from synthscan.detectors import CalibratedModel, InputPolicy, get_detector_class
from synthscan.detectors.freqnet_wavelet import HaarDWT, high_pass
from synthscan.detectors.spai_style import band_views
from synthscan.detectors.texture_gbm import TextureGBMConfig, TextureGBMDetector
from synthscan.detectors.tiling import make_tiles, to_tensor_batch
from synthscan.train.recipe import split_samples, train_detector
from synthscan.train.trainer import TrainConfig, fit

# Each detector's `small_config` (CPU-fast); the shared contract is in test_detector_contract.py.

def make(name: str, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    cls = get_detector_class(name)
    return cls(cls.Config.model_validate({**cls.small_config, **overrides}))


def batch(size: int, n: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def smooth_and_noisy(n: int, size: int, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """n blurred-noise images (label 0) and n raw-noise images (label 1), uint8 RGB."""
    rng = np.random.default_rng(seed)
    noisy = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(2 * n)]
    smooth = [np.asarray(Image.fromarray(a).filter(ImageFilter.GaussianBlur(3))) for a in noisy[:n]]
    return smooth + noisy[n:], np.array([0] * n + [1] * n)


def fitted_gbm(size: int = 32, n: int = 10, **overrides) -> TextureGBMDetector:
    det = TextureGBMDetector(TextureGBMConfig(input=InputPolicy(crop_size=size, max_tiles=4), max_iter=15, **overrides))
    det.fit_arrays(*smooth_and_noisy(n, 48))
    return det


# --- freqnet-wavelet ----------------------------------------------------------------------


@pytest.mark.parametrize("freqnet,wavelet", [(True, True), (True, False), (False, True), (False, False)])
def test_freqnet_ablation_flags_build_and_change_the_model(freqnet, wavelet):
    det = make("freqnet-wavelet", freqnet=freqnet, wavelet=wavelet).eval()
    names = {n for n, _ in det.named_parameters()}
    assert any(n.startswith("freq_stages.") for n in names) == freqnet
    assert any("band_scores" in n for n in names) == wavelet
    with torch.no_grad():
        assert det(batch(32)).shape == (2,)


def test_high_pass_removes_a_constant_and_keeps_a_checkerboard():
    flat = torch.full((1, 1, 16, 16), 0.7)
    assert high_pass(flat, 0.25).abs().max() < 1e-6
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2 * 1.0
    checker = checker[None, None] - 0.5  # only the Nyquist frequency
    assert torch.allclose(high_pass(checker, 0.25), checker, atol=1e-6)


def test_haar_dwt_bands():
    x = torch.rand(2, 3, 8, 8)
    ll, lh, hl, hh = HaarDWT()(x)
    assert ll.shape == (2, 3, 4, 4)
    # LL is twice the 2x2 block mean; orthonormal: energy is preserved.
    assert torch.allclose(ll, 2 * torch.nn.functional.avg_pool2d(x, 2), atol=1e-6)
    energy = sum(b.pow(2).sum() for b in (ll, lh, hl, hh))
    assert torch.allclose(energy, x.pow(2).sum(), rtol=1e-5)
    # A constant image has no detail.
    _, *details = HaarDWT()(torch.ones(1, 1, 4, 4))
    assert all(d.abs().max() < 1e-6 for d in details)


# --- texture-gbm --------------------------------------------------------------------------


def test_texture_gbm_separates_smooth_from_noisy_and_matches_sklearn():
    det = fitted_gbm()
    images, labels = smooth_and_noisy(6, 32, seed=7)  # unseen images
    logits = det(to_tensor_batch(np.stack(images))).numpy()
    assert (logits[labels == 1].min() > 0) and (logits[labels == 0].max() < 0)

    # The stored trees give scikit-learn's own decision_function.
    from sklearn.ensemble import HistGradientBoostingClassifier

    x = det.features(np.stack(images))
    train_images, train_labels = smooth_and_noisy(10, 48)
    tiles = [make_tiles(i, det.input_policy).crops for i in train_images]
    gbm = HistGradientBoostingClassifier(max_iter=15, random_state=0).fit(
        det.features(np.concatenate(tiles)), np.repeat(train_labels, [len(t) for t in tiles]))
    np.testing.assert_allclose(det.decision_function(x), gbm.decision_function(x), rtol=0, atol=1e-12)


def test_texture_gbm_unfitted_is_a_clear_error():
    with pytest.raises(RuntimeError, match="not fitted"):
        TextureGBMDetector(TextureGBMConfig(input=InputPolicy(crop_size=32)))(batch(32))


# --- spai-style ---------------------------------------------------------------------------


def test_spai_band_views_split_the_spectrum():
    x = batch(32, n=1)
    low, high = band_views(x, 0.25)
    assert torch.allclose(low + high, x, atol=1e-5)
    assert low.std() < x.std() and high.abs().mean() > 0


def test_spai_pretrain_loss_decreases_and_only_touches_the_vit():
    det = make("spai-style").train()
    x = torch.nn.functional.avg_pool2d(batch(32, n=8, seed=2), 3, 1, 1)
    opt = torch.optim.Adam(det.vit.parameters(), lr=2e-3)
    losses = []
    for step in range(12):
        torch.manual_seed(step)
        loss = det.vit_loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])
    assert all(p.grad is None for p in det.classifier_parameters())
    vit_ids = {id(p) for p in det.vit.parameters()}
    assert not vit_ids & {id(p) for p in det.classifier_parameters()}
    assert len(vit_ids) + len(det.classifier_parameters()) == len(list(det.parameters()))


def test_spai_fusion_flag_adds_the_cnn_branch():
    plain, fused = make("spai-style"), make("spai-style", cnn_fusion=True)
    assert not hasattr(plain, "cnn") and hasattr(fused, "cnn")
    assert "cnn" in fused.attribution_layers()
    cnn_ids = {id(p) for p in fused.cnn.parameters()}
    assert cnn_ids <= {id(p) for p in fused.classifier_parameters()}
    ood, _ = plain.eval().ood_features(batch(32))
    assert ood.shape == (2, 2 * 2 + 2 * 4) and torch.isfinite(ood).all()


def write_dataset(root, n: int = 10, size: int = 40, seed: int = 3):
    """Smooth "real" and noisy "fake" PNGs plus a manifest with fixed splits (3 of each class in
    val): a folder's hash split depends on tmp_path and could leave a class out of val."""
    images, labels = smooth_and_noisy(n, size, seed=seed)
    root.mkdir(parents=True)
    rows = ["path,label,split"]
    for i, (img, y) in enumerate(zip(images, labels)):
        Image.fromarray(img).save(root / f"{i}.png")
        rows.append(f"{i}.png,{'fake' if y else 'real'},{'val' if i % n < 3 else 'train'}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root / "manifest.csv"


def test_texture_gbm_trains_through_the_recipe(tmp_path):
    root = write_dataset(tmp_path / "data")
    config = dict(input=InputPolicy(crop_size=32, max_tiles=1), max_iter=10)
    model = train_detector("texture-gbm", root, tmp_path / "out", name="tiny-gbm", track=None,
                           detector_config=config, progress=lambda _: None)
    assert model.info.training["trees"] == 10 and model.info.training["train_images"] > 0
    loaded = CalibratedModel.load(tmp_path / "out" / "tiny-gbm.json")
    x = to_tensor_batch(np.stack(smooth_and_noisy(2, 32, seed=9)[0]))
    assert torch.equal(loaded.logits(x), model.logits(x))


def test_resize_detector_trains_at_its_own_input_size(tmp_path):
    """The augmentation's crop (256 by default) is replaced by the detector's 32-px input."""
    root = write_dataset(tmp_path / "data", size=48)
    cfg = TrainConfig(epochs=1, batch_size=8)
    assert cfg.augment.crop_size != 32
    model = train_detector("mlp", root, tmp_path / "out", name="tiny-mlp", track=None, train_config=cfg,
                           detector_config=get_detector_class("mlp").small_config, progress=lambda _: None)
    assert model.info.training["config"]["augment"]["crop_size"] == 32


def test_spai_trains_through_the_recipe_with_a_frozen_vit(tmp_path):
    """Both stages run through the shared trainer; stage 2 leaves the ViT as stage 1 left it."""
    root = write_dataset(tmp_path / "data")
    cfg = TrainConfig(epochs=2, batch_size=8, pretrain_epochs=1, augment=AugmentConfig(crop_size=32, jpeg_p=0, blur_p=0))
    messages = []
    model = train_detector("spai-style", root, tmp_path / "out", name="tiny-spai", track=None, train_config=cfg,
                           detector_config=get_detector_class("spai-style").small_config, progress=messages.append)
    log = [json.loads(line) for line in (tmp_path / "out" / "run" / "log.jsonl").read_text().splitlines()]
    assert log[0]["stage"] == "vit" and np.isfinite(log[0]["loss"])
    assert [r["epoch"] for r in log[1:]] == [1, 2]
    loaded = CalibratedModel.load(tmp_path / "out" / "tiny-spai.json")
    assert loaded.info.detector == "spai-style" and loaded.info.training["epochs_run"] == 2
    assert torch.equal(loaded.logits(batch(32)), model.logits(batch(32)))

    # Stage 2 alone (pretrained ViT frozen): the ViT's weights do not move.
    det = make("spai-style")
    for p in det.vit.parameters():
        p.requires_grad_(False)
    before = {k: v.clone() for k, v in det.vit.state_dict().items()}
    train, val = split_samples(root, track=None)
    fit(det, train, val, TrainConfig(epochs=1, batch_size=8, pretrain_epochs=0, augment=cfg.augment),
        tmp_path / "stage2", progress=lambda _: None)
    assert all(torch.equal(before[k], v) for k, v in det.vit.state_dict().items())

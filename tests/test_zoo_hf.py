"""The Hugging Face part of the zoo: `rine` (CLIP blocks + importance estimator, published heads)
and `backbone` (ResNet / ConvNeXt / Swin / ViT / CvT transfer, Bayesian head).

Every model is built from a tiny config with random weights, or from a tiny checkpoint written
with `save_pretrained` into tmp_path: nothing is downloaded.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

from synthscan.detectors import CalibratedModel, InputPolicy, ModelInfo
from synthscan.detectors.backbone import PRESETS, BackboneConfig, BackboneDetector, BayesianLinear
from synthscan.detectors.pretrained import BackboneUnavailable
from synthscan.detectors.rine import (
    CLIP_MEAN,
    CLIP_STD,
    RINEConfig,
    RINEDetector,
    adversarial_examples,
    load_published_head,
    supervised_contrastive_loss,
)

SIZE = 32
TINY_CLIP = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=3, num_attention_heads=2,
                 image_size=SIZE, patch_size=8, projection_dim=12)
CLIP_INPUT = InputPolicy(mode="resize", crop_size=SIZE, max_tiles=1, mean=CLIP_MEAN, std=CLIP_STD)
TINY_ARCHES = {
    "resnet50": dict(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1]),
    "convnext-tiny": dict(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2),
    "swin-tiny": dict(image_size=SIZE, patch_size=4, embed_dim=8, depths=[1, 1], num_heads=[1, 2], window_size=4),
    "vit-b16": dict(image_size=SIZE, patch_size=8, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=32),
    # depth [1, 2]: transformers' CvtStage indexes its drop-path list by stage number
    "cvt-13": dict(patch_sizes=[7, 3], patch_stride=[4, 2], patch_padding=[2, 1], embed_dim=[8, 16], num_heads=[1, 2],
                   depth=[1, 2], mlp_ratio=[2.0, 2.0], attention_drop_rate=[0.0, 0.0], drop_rate=[0.0, 0.0],
                   drop_path_rate=[0.0, 0.0], qkv_bias=[True, True], cls_token=[False, True], padding_q=[1, 1],
                   padding_kv=[1, 1], kernel_qkv=[3, 3], stride_kv=[2, 2], stride_q=[1, 1],
                   qkv_projection_method=["dw_bn", "dw_bn"]),
}


def tiny_rine(**overrides) -> RINEDetector:
    torch.manual_seed(0)
    return RINEDetector(RINEConfig(**{"input": CLIP_INPUT, "vision_config": TINY_CLIP, "nproj": 2, "proj_dim": 8,
                                      **overrides}))


def tiny_backbone(arch: str = "resnet50", **overrides) -> BackboneDetector:
    torch.manual_seed(0)
    size_input = InputPolicy(mode="resize", crop_size=SIZE, max_tiles=1)
    return BackboneDetector(BackboneConfig(**{"arch": arch, "arch_config": TINY_ARCHES[arch], "input": size_input,
                                              "mlp_hidden": (8,), **overrides}))


def images(n: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def round_trip(det, tmp_path, x):
    model = CalibratedModel(det, ModelInfo(detector=det.name, name="tiny", version="0.0.1"))
    before = model.logits(x)
    loaded = CalibratedModel.load(model.save(tmp_path / "tiny"))
    assert loaded.detector.config == det.config
    assert torch.allclose(loaded.logits(x), before, atol=1e-6)
    return load_file(str(tmp_path / "tiny.safetensors"))


# --- rine -------------------------------------------------------------------------------------


@pytest.mark.parametrize("block_feature", ["block_output", "ln_2"])
def test_rine_forward_and_importance_weights(block_feature):
    det = tiny_rine(block_feature=block_feature).eval()
    with torch.no_grad():
        tokens = det.block_tokens(images())
        logits = det(images())
    assert tokens.shape == (2, TINY_CLIP["num_hidden_layers"], TINY_CLIP["hidden_size"])
    assert logits.shape == (2,) and torch.isfinite(logits).all() and logits[0] != logits[1]
    weights = det.importance_weights()
    assert weights.shape == (1, 3, 8)
    assert torch.allclose(weights.sum(1), torch.ones(1, 8)) and (weights > 0).all()
    # Learned: not uniform, and the logits depend on them.
    with torch.no_grad():
        det.importance_logits.mul_(5.0)
        assert not torch.allclose(det(images()), logits)


def test_rine_block_outputs_are_the_cls_of_each_hidden_state():
    det = tiny_rine().eval()
    with torch.no_grad():
        hidden = det.backbone(pixel_values=det.normalise(images()), output_hidden_states=True).hidden_states
        assert torch.equal(det.block_tokens(images())[:, 2], hidden[3][:, 0])


def test_rine_trains_head_not_backbone():
    det = tiny_rine().train()
    assert not det.backbone.training  # frozen backbone stays in eval mode
    loss = det.training_loss(images(4), torch.tensor([0.0, 1.0, 0.0, 1.0]))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in det.backbone.parameters())
    assert det.importance_logits.grad is not None and det.importance_logits.grad.abs().sum() > 0
    assert det.q1[1].weight.grad is not None and det.head[-1].weight.grad is not None


def test_supervised_contrastive_loss_prefers_separated_classes():
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    separated = centres[labels] + 0.05 * torch.randn(6, 3, generator=g)
    mixed = torch.randn(6, 3, generator=g)
    sep, mix = supervised_contrastive_loss(separated, labels), supervised_contrastive_loss(mixed, labels)
    assert torch.isfinite(sep) and torch.isfinite(mix)
    assert sep < mix
    # Its minimum, log(positives per anchor), is reached when classes collapse far apart.
    assert sep.item() == pytest.approx(np.log(2), abs=0.01)
    # No two samples share a label: zero, and still differentiable.
    lone = torch.randn(2, 3, requires_grad=True)
    out = supervised_contrastive_loss(lone, torch.tensor([0, 1]))
    assert out.item() == 0.0
    out.backward()


@pytest.mark.parametrize("method", ["fgsm", "pgd"])
def test_adversarial_examples_stay_within_epsilon_and_raise_the_loss(method):
    det = tiny_rine().eval()
    with torch.no_grad():
        det.head[-1].weight.mul_(50.0)  # random-init logits are nearly flat; make the loss sensitive
    x, y, eps = images(4), torch.tensor([0.0, 1.0, 0.0, 1.0]), 0.03
    x_adv = adversarial_examples(det, x, y, method=method, epsilon=eps, steps=3)
    delta = (x_adv - x).abs()
    assert delta.max() <= eps + 1e-6 and delta.max() > eps / 2
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert all(p.grad is None for p in det.parameters())
    with torch.no_grad():
        clean = F.binary_cross_entropy_with_logits(det(x), y)
        attacked = F.binary_cross_entropy_with_logits(det(x_adv), y)
    assert attacked > clean
    if method == "fgsm":  # a single full step: every unclipped pixel moves by exactly epsilon
        inside = (x > eps) & (x < 1 - eps)
        assert torch.allclose(delta[inside], torch.full_like(delta[inside], eps), atol=1e-6)


def test_rine_adversarial_training_loss_uses_attacked_copies():
    det = tiny_rine(adversarial="fgsm", adv_epsilon=0.02).train()
    seen = []
    det.q1.register_forward_hook(lambda m, args, out: seen.append(len(out)))
    loss = det.training_loss(images(4), torch.tensor([0.0, 1.0, 0.0, 1.0]))
    assert torch.isfinite(loss)
    assert seen[-1] == 8  # the loss saw the clean batch and its attacked copy


def test_rine_hub_backbone_offline_error_names_the_id():
    with pytest.raises(BackboneUnavailable, match="no-such-org/no-such-clip.*locally"):
        RINEDetector(RINEConfig(backbone="no-such-org/no-such-clip", local_files_only=True))


def test_rine_pretrained_backbone_is_not_saved_but_reattached(tmp_path):
    """A CLIPModel checkpoint on disk (like the hub's) is the backbone; only the head is saved."""
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(3)
    text = dict(vocab_size=50, hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2)
    CLIPModel(CLIPConfig(text_config=text, vision_config=TINY_CLIP, projection_dim=12)).save_pretrained(tmp_path / "clip")
    det = RINEDetector(RINEConfig(input=CLIP_INPUT, backbone=str(tmp_path / "clip"), proj_dim=8, local_files_only=True))
    saved = round_trip(det, tmp_path, images())
    assert saved and not any(k.startswith("backbone.") for k in saved)
    assert set(saved) == {k for k in det.state_dict()} and "importance_logits" in saved
    # The inline-config model keeps everything (its random backbone cannot be rebuilt).
    assert any(k.startswith("backbone.") for k in tiny_rine().state_dict())


def test_rine_inline_backbone_round_trip(tmp_path):
    det = tiny_rine(block_feature="ln_2")
    saved = round_trip(det, tmp_path, images())
    assert any(k.startswith("backbone.") for k in saved)


def _published_rine_state(blocks=3, width=16, proj_dim=8, nproj=2, seed=0):
    """Key names and shapes of mever-team/rine's ckpt/model_*_trainable.pth (see load_published_head)."""
    g = torch.Generator().manual_seed(seed)
    state = {"alpha": torch.randn(1, blocks, proj_dim, generator=g)}
    for proj in ("proj1", "proj2"):
        for i in range(nproj):
            d_in = width if (proj == "proj1" and i == 0) else proj_dim
            state[f"{proj}.{1 + 3 * i}.weight"] = torch.randn(proj_dim, d_in, generator=g) * 0.5
            state[f"{proj}.{1 + 3 * i}.bias"] = torch.randn(proj_dim, generator=g) * 0.1
    for i, d_out in ((0, proj_dim), (3, proj_dim), (6, 1)):
        state[f"head.{i}.weight"] = torch.randn(d_out, proj_dim, generator=g) * 0.5
        state[f"head.{i}.bias"] = torch.randn(d_out, generator=g) * 0.1
    return state


def _ln2_cls_tokens(vision, pixels):
    """Independent of rine.py: run CLIP's blocks by hand, keep layer_norm2's CLS output."""
    h = vision.pre_layrnorm(vision.embeddings(pixels))
    tokens = []
    for layer in vision.encoder.layers:
        h = h + layer.self_attn(layer.layer_norm1(h), attention_mask=None)[0]
        normed = layer.layer_norm2(h)
        tokens.append(normed[:, 0])
        h = h + layer.mlp(normed)
    return torch.stack(tokens, dim=1)


def test_load_published_rine_checkpoint(tmp_path):
    state = _published_rine_state()
    torch.save(state, tmp_path / "model_4class_trainable.pth")
    torch.manual_seed(1)
    det = load_published_head(tmp_path / "model_4class_trainable.pth", input=CLIP_INPUT, vision_config=TINY_CLIP)
    assert (det.config.block_feature, det.config.nproj, det.config.proj_dim) == ("ln_2", 2, 8)
    assert torch.equal(det.importance_logits, state["alpha"]) and torch.equal(det.head[6].weight, state["head.6.weight"])
    x = images()
    with torch.no_grad():
        got = det(x)
        # The published forward pass, written out from their Model.forward (dropout off).
        g = _ln2_cls_tokens(det.backbone.vision_model, det.normalise(x))
        for i in (1, 4):
            g = F.relu(F.linear(g, state[f"proj1.{i}.weight"], state[f"proj1.{i}.bias"]))
        z = (torch.softmax(state["alpha"], dim=1) * g).sum(1)
        for i in (1, 4):
            z = F.relu(F.linear(z, state[f"proj2.{i}.weight"], state[f"proj2.{i}.bias"]))
        for i in (0, 3):
            z = F.relu(F.linear(z, state[f"head.{i}.weight"], state[f"head.{i}.bias"]))
        expected = F.linear(z, state["head.6.weight"], state["head.6.bias"]).squeeze(1)
    assert torch.allclose(got, expected, atol=1e-5)


def test_load_published_head_rejects_mismatches(tmp_path):
    torch.save(_published_rine_state(blocks=5), tmp_path / "deep.pth")
    with pytest.raises(ValueError, match="5 CLIP blocks"):
        load_published_head(tmp_path / "deep.pth", input=CLIP_INPUT, vision_config=TINY_CLIP)
    torch.save({"something": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="neither a RINE"):
        load_published_head(tmp_path / "other.pth", vision_config=TINY_CLIP)
    torch.save({"weight": torch.zeros(1, 99), "bias": torch.zeros(1)}, tmp_path / "wide_fc.pth")
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_published_head(tmp_path / "wide_fc.pth", input=CLIP_INPUT, vision_config=TINY_CLIP)


@pytest.mark.parametrize("prefix", ["", "fc."])
def test_load_published_universal_fake_detect_fc(tmp_path, prefix):
    g = torch.Generator().manual_seed(2)
    fc = {f"{prefix}weight": torch.randn(1, 12, generator=g), f"{prefix}bias": torch.randn(1, generator=g)}
    torch.save(fc, tmp_path / "fc_weights.pth")
    det = load_published_head(tmp_path / "fc_weights.pth", input=CLIP_INPUT, vision_config=TINY_CLIP)
    assert det.config.head == "linear-probe"
    x = images()
    with torch.no_grad():
        embeds = det.backbone(pixel_values=det.normalise(x)).image_embeds
        expected = F.linear(embeds, fc[f"{prefix}weight"], fc[f"{prefix}bias"]).squeeze(1)
        assert torch.allclose(det(x), expected, atol=1e-6)


def test_rine_config_round_trip_and_bundled_toml():
    from synthscan.train.config import resolve_config

    cfg = RINEConfig(vision_config=TINY_CLIP, adversarial="pgd", contrastive_weight=0.2)
    assert RINEConfig.model_validate(json.loads(cfg.model_dump_json())) == cfg
    detector_config, train = resolve_config("rine")
    bundled = RINEConfig.model_validate(detector_config)
    assert bundled.backbone == "wkcn/TinyCLIP-ViT-8M-16-Text-3M-YFCC15M" and bundled.proj_dim == 256
    assert (train.batch_size, train.lr, train.augment.crop_size) == (64, 1e-4, 224)


# --- backbone ---------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", list(TINY_ARCHES))
def test_backbone_forward_and_round_trip(arch, tmp_path):
    det = tiny_backbone(arch, head="mlp").eval()
    x = images()
    with torch.no_grad():
        out = det(x)
    assert out.shape == (2,) and torch.isfinite(out).all() and out[0] != out[1]
    assert det.pooled_features(x).shape == (2, det.feature_width())
    round_trip(det, tmp_path, x)


@pytest.mark.parametrize("arch", ["resnet50", "vit-b16"])
def test_head_only_freezes_backbone_partial_unfreeze_trains_last_stage(arch):
    x, y = images(4), torch.tensor([0.0, 1.0, 0.0, 1.0])
    head_only = tiny_backbone(arch).train()
    head_only.training_loss(x, y).backward()
    assert all(not p.requires_grad and p.grad is None for p in head_only.backbone.parameters())
    assert head_only.head[-1].weight.grad is not None

    partial = tiny_backbone(arch, mode="partial-unfreeze", unfreeze_stages=1).train()
    partial.training_loss(x, y).backward()
    first, last = partial.stages()[0], partial.stages()[-1]
    assert all(p.requires_grad and p.grad is not None for p in last.parameters())
    assert all(not p.requires_grad and p.grad is None for p in first.parameters())
    assert last.training and not first.training  # frozen stages keep BatchNorm statistics fixed


def test_partial_unfreeze_saves_only_the_trained_part_of_a_pretrained_backbone(tmp_path):
    from transformers import ResNetConfig, ResNetModel

    torch.manual_seed(4)
    ResNetModel(ResNetConfig(**TINY_ARCHES["resnet50"])).save_pretrained(tmp_path / "resnet")
    det = BackboneDetector(BackboneConfig(arch="resnet50", weights=str(tmp_path / "resnet"), local_files_only=True,
                                          mode="partial-unfreeze", input=InputPolicy(mode="resize", crop_size=SIZE)))
    det.train()
    det.training_loss(images(4), torch.tensor([0.0, 1.0, 0.0, 1.0])).backward()  # BN stats of the last stage move
    saved = round_trip(det, tmp_path, images())
    backbone_keys = {k for k in saved if k.startswith("backbone.")}
    assert backbone_keys and all(k.startswith("backbone.encoder.stages.1.") for k in backbone_keys)
    assert "head.0.weight" in saved


def test_bayesian_head_uncertainty():
    det = tiny_backbone(head="bayesian").eval()
    x = images(3)
    with torch.no_grad():
        assert torch.equal(det(x), det(x))  # eval: the mean weights, deterministic
    mean, std = det.predict_with_uncertainty(x, samples=20)
    assert mean.shape == std.shape == (3,)
    assert ((mean > 0) & (mean < 1)).all() and (std > 0).all()
    with torch.no_grad():  # wider posteriors, wider predictive spread
        det.head.weight_log_var.fill_(0.0)
    _, wide_std = det.predict_with_uncertainty(x, samples=20)
    assert (wide_std > std).all()
    assert isinstance(det.head, BayesianLinear) and det.head.kl() > 0
    with pytest.raises(ValueError, match="bayesian"):
        tiny_backbone(head="linear").predict_with_uncertainty(x)


def test_bayesian_training_loss_is_the_elbo():
    det = tiny_backbone(head="bayesian", kl_weight=0.5).train()
    x, y = images(4), torch.tensor([0.0, 1.0, 0.0, 1.0])
    torch.manual_seed(0)
    elbo = det.training_loss(x, y)
    torch.manual_seed(0)
    bce = F.binary_cross_entropy_with_logits(det(x), y)
    assert torch.allclose(elbo, bce + 0.5 * det.head.kl())
    elbo.backward()
    assert det.head.weight_log_var.grad is not None and det.head.weight_mu.grad is not None


def test_backbone_presets_and_config_round_trip():
    v2 = BackboneConfig(preset="resnext101-v2")
    assert (v2.arch, v2.mode, v2.unfreeze_stages, v2.head) == ("resnext", "partial-unfreeze", 1, "mlp")
    assert BackboneConfig(preset="resnext101-v2", head="linear").head == "linear"  # explicit wins
    vit = BackboneConfig(preset="vit-b16-mlp")
    assert vit.input.mean == (0.5, 0.5, 0.5) and BackboneConfig().input.mean[0] == 0.485
    for name in PRESETS:
        cfg = BackboneConfig(preset=name)
        assert BackboneConfig.model_validate(json.loads(cfg.model_dump_json())) == cfg
    with pytest.raises(ValueError, match="unknown preset"):
        BackboneConfig(preset="resnet-9000")
    with pytest.raises(ValueError, match="spatial_attention"):
        BackboneConfig(arch="vit-b16", spatial_attention=True)


def test_spatial_attention_variant_has_its_parameters():
    det = tiny_backbone(head="bayesian", spatial_attention=True)
    assert {"spatial_attention.conv.weight", "spatial_attention.conv.bias"} <= set(det.state_dict())
    assert det(images()).shape == (2,)


# --- training through the shared recipe -------------------------------------------------------


def _tiny_manifest_dataset(root, n=8):
    """Smooth "real" and noisy "fake" images, with explicit train/val splits (a manifest)."""
    rng = np.random.default_rng(0)
    rows = ["path,label,generator,family,split"]
    for label in ("real", "fake"):
        (root / label).mkdir(parents=True)
        for i in range(n):
            if label == "real":
                ramp = np.linspace(0, 255, 40)[None, :, None] * rng.uniform(0.3, 1.0, 3)
                rgb = np.broadcast_to(ramp, (40, 40, 3)).astype(np.uint8)
            else:
                rgb = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(np.ascontiguousarray(rgb)).save(root / label / f"{i}.png")
            rows.append(f"{label}/{i}.png,{label},{'real' if label == 'real' else 'gan'},{label},"
                        f"{'val' if i % 4 == 0 else 'train'}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root / "manifest.csv"


@pytest.mark.parametrize("detector, config", [
    ("rine", {"input": CLIP_INPUT.model_dump(), "vision_config": TINY_CLIP, "proj_dim": 8, "adversarial": "fgsm"}),
    ("backbone", {"arch": "resnet50", "arch_config": TINY_ARCHES["resnet50"], "head": "bayesian",
                  "input": {"mode": "resize", "crop_size": SIZE}}),
])
def test_train_detector_one_epoch(tmp_path, detector, config):
    from synthscan.data.augment import AugmentConfig
    from synthscan.train.recipe import train_detector
    from synthscan.train.trainer import TrainConfig

    data = _tiny_manifest_dataset(tmp_path / "data")
    cfg = TrainConfig(epochs=1, batch_size=8, lr=1e-3, augment=AugmentConfig(crop_size=SIZE))
    model = train_detector(detector, data, tmp_path / "out", name="tiny", track=None, train_config=cfg,
                           detector_config=config, progress=lambda _: None)
    log = [json.loads(line) for line in (tmp_path / "out" / "run" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["epoch"] == 1 and np.isfinite(log[-1]["loss"])
    loaded = CalibratedModel.load(tmp_path / "out" / "tiny.json")
    assert loaded.info.detector == detector
    assert torch.allclose(loaded.logits(images()), model.logits(images()), atol=1e-6)

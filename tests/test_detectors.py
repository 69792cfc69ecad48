"""The detector zoo: interface, save/load, registry, and NPR / spectral-dae specifics."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from synthscan.detectors import CalibratedModel, Detector, ModelInfo
from synthscan.detectors.base import FORMAT_VERSION, Calibration
from synthscan.detectors.npr import NPRConfig, NPRDetector, npr_residual
from synthscan.detectors.registry import get_detector_class, register_detector, resolve_model_path
from synthscan.detectors.spectral_dae import SpectralDAEConfig
from synthscan.result import Decision

# The built-ins' shared contract (forward, hooks, save/load, TOML) is in test_detector_contract.py.
SMALL = 64  # the crop size of npr's and spectral-dae's `small_config`


def make(name: str, seed: int = 0) -> Detector:
    torch.manual_seed(seed)
    cls = get_detector_class(name)
    return cls(cls.Config.model_validate(cls.small_config))


def random_batch(det: Detector, n: int = 2, seed: int = 0) -> torch.Tensor:
    size = det.input_policy.crop_size
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_save_load_keeps_calibration_decision_and_metadata(tmp_path):
    name = "npr"
    det = make(name, seed=1)
    # Move BatchNorm running stats away from their init so that a missing buffer would show.
    det.train()
    with torch.no_grad():
        for _ in range(2):
            det(random_batch(det, n=4, seed=5))
    info = ModelInfo(
        detector=name, name=f"tiny-{name}", version="1.2.3",
        calibration=Calibration(scale=0.8, bias=0.25, fitted_on="unit"),
        decision=Decision(threshold=0.62, uncertain_low=0.5, uncertain_high=0.7),
        training={"epochs": 1},
    )
    model = CalibratedModel(det, info)
    x = random_batch(det, n=2, seed=3)
    before = model.logits(x)

    json_path = model.save(tmp_path / "m")
    assert json_path == tmp_path / "m.json"
    assert (tmp_path / "m.safetensors").exists()
    loaded = CalibratedModel.load(json_path)
    assert type(loaded.detector) is type(det)
    assert not loaded.detector.training
    assert torch.equal(loaded.logits(x), before)
    assert loaded.info.config == det.config.model_dump(mode="json")
    assert loaded.detector.config == det.config
    assert loaded.info.calibration == info.calibration
    assert loaded.info.decision == info.decision
    assert (loaded.name, loaded.version, loaded.info.training) == (f"tiny-{name}", "1.2.3", {"epochs": 1})
    # Saving by the .safetensors name or the bare stem writes the same pair.
    assert model.save(tmp_path / "m.safetensors") == json_path
    assert resolve_model_path(tmp_path / "m") == json_path
    assert resolve_model_path(str(tmp_path / "m.safetensors")) == json_path


def test_newer_format_version_is_refused(tiny_model_path):
    data = json.loads(tiny_model_path.read_text())
    assert data["format_version"] == FORMAT_VERSION
    data["format_version"] = FORMAT_VERSION + 1
    tiny_model_path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="newer"):
        CalibratedModel.load(tiny_model_path)


def test_unknown_detector_in_json_is_a_key_error(tiny_model_path):
    data = json.loads(tiny_model_path.read_text())
    data["detector"] = "no-such-detector"
    tiny_model_path.write_text(json.dumps(data))
    with pytest.raises(KeyError, match="no-such-detector"):
        CalibratedModel.load(tiny_model_path)


def test_resolve_model_path_unknown_name_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model 'surely-not-a-model'.*bundled"):
        resolve_model_path("surely-not-a-model")
    # A JSON without its .safetensors half is not a model either.
    (tmp_path / "half.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="half"):
        resolve_model_path(tmp_path / "half.json")


def test_resolve_model_path_folder(tmp_path, tiny_model):
    folder = tmp_path / "one"
    path = tiny_model.save(folder / "a")
    assert resolve_model_path(folder) == path
    tiny_model.save(folder / "b")
    with pytest.raises(FileNotFoundError, match="holds 2 models"):
        resolve_model_path(folder)


def test_get_unknown_detector_lists_known():
    with pytest.raises(KeyError, match="unknown detector 'nope'.*npr"):
        get_detector_class("nope")


def test_duplicate_registration_raises():
    with pytest.raises(ValueError, match="registered twice"):

        class Impostor(Detector):  # defining it registers it, under a name already taken
            name = "npr"
            Config = NPRConfig

    assert get_detector_class("npr") is NPRDetector  # the registry is unchanged
    assert register_detector(NPRDetector) is NPRDetector  # re-registering the same class is fine


# --- NPR --------------------------------------------------------------------------------------


@pytest.mark.parametrize("factor", [2, 4])
def test_npr_residual_of_nearest_upsampled_image_is_zero(factor):
    small = torch.rand(2, 3, 16 // factor, 16 // factor, generator=torch.Generator().manual_seed(0))
    up = F.interpolate(small, scale_factor=factor, mode="nearest")
    assert up.shape == (2, 3, 16, 16)
    res = npr_residual(up, factor)
    assert res.shape == up.shape
    assert torch.equal(res, torch.zeros_like(res))


def test_npr_residual_of_noise_is_nonzero_and_exact():
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    res = npr_residual(x, 2)
    assert res.abs().sum() > 0
    # Top-left pixel of each 2x2 block is its own reference: residual 0 there, x - x[block corner] elsewhere.
    assert torch.equal(res[:, :, ::2, ::2], torch.zeros(1, 3, 4, 4))
    assert torch.allclose(res[0, 0, 1, 1], x[0, 0, 1, 1] - x[0, 0, 0, 0])
    assert torch.allclose(res[0, 2, 3, 2], x[0, 2, 3, 2] - x[0, 2, 2, 2])


def test_npr_detector_map_of_upsampled_image_is_zero():
    det = make("npr").eval()
    small = torch.rand(1, 3, SMALL // 4, SMALL // 4, generator=torch.Generator().manual_seed(2))
    up = F.interpolate(small, scale_factor=4, mode="nearest")  # zero residual at factors 2 and 4
    assert torch.equal(det.npr(up), torch.zeros_like(up))
    assert det.npr(torch.rand(1, 3, SMALL, SMALL)).abs().sum() > 0


def _param_names(**overrides) -> set[str]:
    cfg = {**NPRDetector.small_config, **overrides}
    return {n for n, _ in NPRDetector(NPRConfig(**cfg)).named_parameters()}


def test_npr_attention_switches_change_the_parameter_set():
    base = _param_names()  # defaults: channel attention on, spatial attention off
    assert any(n.startswith("channel_attention.") for n in base)
    assert not any(n.startswith("spatial_attention.") for n in base)
    no_channel = _param_names(channel_attention=False)
    assert no_channel < base and not any(n.startswith("channel_attention.") for n in no_channel)
    with_spatial = _param_names(spatial_attention=True)
    assert base < with_spatial
    assert with_spatial - base == {"spatial_attention.conv.weight", "spatial_attention.conv.bias"}


def test_npr_multiscale_switch():
    x = torch.rand(1, 3, SMALL, SMALL, generator=torch.Generator().manual_seed(3))
    single = NPRDetector(NPRConfig(**{**NPRDetector.small_config, "multiscale_fusion": False}))
    multi = NPRDetector(NPRConfig(**NPRDetector.small_config))
    gain = single.config.residual_gain
    # Without fusion only the first scale is used; with it, a softmax mix of all scales (equal at init).
    assert torch.allclose(single.npr(x), npr_residual(x, 2) * gain)
    expected = (npr_residual(x, 2) + npr_residual(x, 4)) / 2 * gain
    assert torch.allclose(multi.npr(x), expected, atol=1e-6)
    assert not torch.allclose(single.npr(x), multi.npr(x))
    # The fusion weights are learnable: a gradient reaches them only when fusion is on. (With
    # fusion off, `scale_logits` still exists, unused, so the parameter names do not change.)
    multi.npr(x).pow(2).sum().backward()
    assert multi.scale_logits.grad is not None and multi.scale_logits.grad.abs().sum() > 0
    single.npr(x).pow(2).sum().backward()
    assert single.scale_logits.grad is None or single.scale_logits.grad.abs().sum() == 0


def test_npr_forward_handles_non_square_multiples_of_the_scale():
    det = make("npr").eval()
    with torch.no_grad():
        out = det(torch.rand(2, 3, 32, 48))
    assert out.shape == (2,) and torch.isfinite(out).all()


# --- spectral-dae -----------------------------------------------------------------------------


def test_spectral_dae_loss_and_classifier_parameters():
    det = make("spectral-dae").train()
    clean = torch.rand(2, 3, SMALL, SMALL, generator=torch.Generator().manual_seed(4))
    loss = det.dae_loss(clean)
    assert loss.ndim == 0 and torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    assert all(p.grad is not None for p in det.dae.parameters())

    cls_params = det.classifier_parameters()
    dae_ids = {id(p) for p in det.dae.parameters()}
    assert cls_params and not any(id(p) in dae_ids for p in cls_params)
    names = {id(p): n for n, p in det.named_parameters()}
    assert all(not names[id(p)].startswith("dae.") for p in cls_params)
    # Together they are every parameter, each once.
    assert len(cls_params) + len(dae_ids) == len(list(det.parameters()))


def test_spectral_dae_residual_and_spectrum_shapes():
    det = make("spectral-dae").eval()
    x = torch.rand(2, 3, SMALL, SMALL)
    with torch.no_grad():
        assert det.dae(x).shape == x.shape
        spec = det.spectrum(x)
    assert spec.shape == x.shape and torch.isfinite(spec).all()
    # Standardised per image.
    assert torch.allclose(spec.mean((1, 2, 3)), torch.zeros(2), atol=1e-4)
    assert torch.allclose(spec.std((1, 2, 3)), torch.ones(2), atol=1e-3)


def test_spectral_dae_default_policy():
    policy = SpectralDAEConfig().input
    assert (policy.mode, policy.crop_size) == ("tiles", 128)

"""The detector contract, checked for every registered detector with no hand-kept list.

Each detector is built from its own `small_config`; its bundled TOML, config, forward pass,
training and explanation hooks, and save/load round trip are checked here, so a new detector
file (plus its TOML) is covered without editing this test. A package installed with an entry
point in the `synthscan.detectors` group is loaded by name the same way.
"""

from __future__ import annotations

import json
import sys
from importlib import resources

import numpy as np
import pytest
import torch

from synthscan.data.augment import AugmentConfig
from synthscan.detectors import catalog
from synthscan.detectors.base import CalibratedModel, Detector, DetectorConfig, InputPolicy, ModelInfo
from synthscan.detectors.registry import get_detector_class, list_detectors
from synthscan.explain.attribution import METHODS
from synthscan.explain.methods import get_method
from synthscan.train.trainer import TrainConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

# Every detector shipped with synthscan or installed as a plug-in (not the tests' own fakes).
NAMES = [name for name, cls in list_detectors().items() if not cls.__module__.startswith(("test_", "conftest"))]


def batch(det: Detector, n: int = 2, seed: int = 0) -> torch.Tensor:
    """n images at the detector's crop size: the first nearly flat, the others noise."""
    size = det.input_policy.crop_size
    x = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))
    x[0] = 0.43 + 0.04 * x[0]
    return x


def build(name: str, seed: int = 0) -> Detector:
    """A small detector, ready to run: built from `small_config`, and fitted if one-shot."""
    torch.manual_seed(seed)
    cls = get_detector_class(name)
    det = cls(cls.Config.model_validate(cls.small_config))
    if cls.fits_in_one_shot:
        rng = np.random.default_rng(seed)
        noisy = [rng.integers(0, 256, (48, 48, 3), dtype=np.uint8) for _ in range(12)]
        smooth = [(a.astype(np.float32) * 0.1 + 110).astype(np.uint8) for a in noisy[:6]]
        det.fit_arrays(smooth + noisy[6:], [0] * 6 + [1] * 6)
    return det.eval()


def test_the_builtins_are_found_without_a_list():
    assert {"npr", "spectral-dae", "texture-gbm", "rine", "backbone"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_config_and_bundled_toml(name):
    cls = get_detector_class(name)
    assert cls.name == name and issubclass(cls.Config, DetectorConfig)
    config = cls.Config.model_validate(cls.small_config)
    assert cls.Config.model_validate(json.loads(config.model_dump_json())) == config
    assert isinstance(config.input, InputPolicy)
    if not cls.__module__.startswith("synthscan."):
        return  # a plug-in ships its own TOML, if any
    toml = tomllib.loads((resources.files("synthscan") / "configs" / f"{name}.toml").read_text())
    policy = cls.Config.model_validate(toml.get("detector", {})).input
    TrainConfig(**toml.get("train", {}))
    augment = AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in toml.get("augment", {}).items()})
    if policy.mode == "resize":  # resize detectors train at their input size
        assert augment.crop_size == policy.crop_size


@pytest.mark.parametrize("name", NAMES)
def test_forward_and_explanation_hooks(name):
    det = build(name)
    with torch.no_grad():
        out = det(batch(det, n=3))
    assert out.shape == (3,) and out.dtype.is_floating_point and torch.isfinite(out).all()
    assert not torch.allclose(out[0], out[1])  # the output depends on the image
    own = {id(m) for m in det.modules()}
    assert all(id(layer) in own and layer is not det for layer in det.attribution_layers().values())
    assert det.default_attribution in METHODS and get_method(det.default_attribution).supports(det)
    if (denoise := det.denoiser()) is not None:
        x = batch(det, n=1)[:, :, :37, :45]  # any size, not only the crop's
        assert denoise(x).shape == x.shape


@pytest.mark.parametrize("name", NAMES)
def test_training_hooks(name):
    det = build(name)
    if det.fits_in_one_shot:
        return  # fitted in `build`
    trainable = {id(p) for p in det.trainable_parameters()}
    assert trainable and trainable <= {id(p) for p in det.parameters()}
    det.train()
    x, y = batch(det, n=2), torch.tensor([0.0, 1.0])
    loss = det.training_loss(x, y)
    assert loss.ndim == 0 and torch.isfinite(loss)
    for stage in det.real_only_stages():
        module = getattr(det, stage)
        assert isinstance(module, torch.nn.Module)
        assert not trainable & {id(p) for p in module.parameters()}, f"{stage} is frozen after pre-training"
        assert torch.isfinite(det.stage_loss(stage, x))


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip(name, tmp_path):
    det = build(name, seed=1)
    if not det.fits_in_one_shot:  # move BatchNorm running stats off their init so a lost buffer shows
        det.train()
        with torch.no_grad():
            det(batch(det, n=4, seed=5))
    model = CalibratedModel(det, ModelInfo(detector=name, name=f"tiny-{name}"))
    x = batch(det, n=3, seed=3)
    before = model.logits(x)
    loaded = CalibratedModel.load(model.save(tmp_path / "m"))
    assert type(loaded.detector) is type(det) and loaded.detector.config == det.config
    assert torch.allclose(loaded.logits(x), before, atol=1e-6)


PLUGIN = '''
import torch
from synthscan.detectors.base import Detector, DetectorConfig, InputPolicy


class MeanConfig(DetectorConfig):
    input: InputPolicy = InputPolicy(crop_size=16)


class MeanDetector(Detector):
    """P(fake) rises with brightness: one weight and one bias."""

    name = "plugin-mean"
    Config = MeanConfig

    def __init__(self, config=None):
        super().__init__(config)
        self.scale = torch.nn.Parameter(torch.tensor(2.0))
        self.bias = torch.nn.Parameter(torch.tensor(-1.0))

    def forward(self, x):
        return self.scale * x.mean((1, 2, 3)) + self.bias
'''


def test_an_entry_point_plugin_loads_by_name(tmp_path, monkeypatch):
    """A package declaring `[project.entry-points."synthscan.detectors"]` needs no other step."""
    (tmp_path / "mean_plugin.py").write_text(PLUGIN)
    dist = tmp_path / "mean_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mean-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[synthscan.detectors]\nplugin-mean = mean_plugin:MeanDetector\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(catalog, "_DETECTORS", dict(catalog._DETECTORS))  # forget the plug-in afterwards
    monkeypatch.delitem(sys.modules, "mean_plugin", raising=False)
    catalog.reload_plugins()

    cls = get_detector_class("plugin-mean")
    assert cls.__module__ == "mean_plugin" and "plugin-mean" in list_detectors()
    model = CalibratedModel(cls(), ModelInfo(detector="plugin-mean", name="mean"))
    loaded = CalibratedModel.load(model.save(tmp_path / "mean"))
    white, black = np.full((16, 16, 3), 255, np.uint8), np.zeros((16, 16, 3), np.uint8)
    assert loaded.score(white).p_fake == pytest.approx(1 / (1 + np.exp(-1.0)))
    assert loaded.score(black).p_fake == pytest.approx(1 / (1 + np.exp(1.0)))

"""Every registered attribution method against a detector whose answer is known.

`RedBlue` scores red against blue: red pixels push its output towards "fake", blue ones towards
"real", grey ones neither way. On a grey image with one red and one blue patch, a method's map
for target "fake" must point at the red patch and its map for "real" at the blue one; methods
that show sensitivity in either direction (|gradient|) or target-free activity must light up
both patches and not the background. The list of methods is the registry's.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import TinyTilesConfig
from synthscan.detectors.base import CalibratedModel, Detector
from synthscan.explain.attribution import METHODS, attribution_maps
from synthscan.explain.methods import get_method, overlays

RED, BLUE = (slice(16, 48), slice(16, 48)), (slice(80, 112), slice(144, 176))  # (rows, cols)


class RedBlue(Detector):
    """logit = 8 * (mean ReLU(R - B - 0.2) - mean ReLU(B - R - 0.2)) over the crop."""

    name = "test-red-blue"
    Config = TinyTilesConfig

    def __init__(self, config=None):
        super().__init__(config)
        conv = torch.nn.Conv2d(3, 2, kernel_size=1)
        with torch.no_grad():
            conv.weight.copy_(torch.tensor([[1.0, 0, -1], [-1, 0, 1]])[:, :, None, None])
            conv.bias.fill_(-0.2)
        self.features = torch.nn.Sequential(conv, torch.nn.ReLU())

    def forward(self, x):
        a = self.features(x).mean((2, 3))
        return 8 * (a[:, 0] - a[:, 1])

    def attribution_layers(self):
        return {"features": self.features}


def image() -> np.ndarray:
    rgb = np.full((128, 192, 3), 128, np.uint8)
    rgb[RED] = (255, 0, 0)
    rgb[BLUE] = (0, 0, 255)
    return rgb


def background(values: np.ndarray) -> float:
    mask = np.ones(values.shape, bool)
    mask[RED] = mask[BLUE] = False
    return float(values[mask].mean())


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("target", ["fake", "real"])
def test_each_method_points_at_what_drives_the_target(name, target):
    torch.manual_seed(0)  # Kernel-SHAP and LIME sample coalitions
    model = CalibratedModel.uncalibrated(RedBlue())
    method = get_method(name)
    assert method.supports(model.detector)
    (m,) = attribution_maps(model, image(), [name], target)
    red, blue, rest = m.values[RED].mean(), m.values[BLUE].mean(), background(m.values)
    if method.signed and method.target_dependent:
        driver, other = (red, blue) if target == "fake" else (blue, red)
        assert driver > max(other, rest) + 0.2, (driver, other, rest)
    else:
        assert min(red, blue) > rest + 0.2, (red, blue, rest)


def test_every_method_is_drawn_over_the_image_in_reports():
    """The report's heatmap layer takes any overlaying map, activation maps included."""
    assert all(overlays(name) for name in METHODS)
    assert overlays("activations:features") and not overlays("spectrum") and not overlays("residual")

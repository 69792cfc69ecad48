"""3-layer MLP baseline (report 004, "Identifying AI-generated Images").

The report's "vanilla" network: the image flattened, Linear -> 128 -> ReLU -> 32 -> ReLU -> logit.
It sees the whole image resized to 32x32, the CIFAKE size of synthbench's 32 track, where the
resize is the identity and no trace is lost (the report used 224 px: 150,528 inputs; at 32 px
it is 3,072). A floor for the zoo: what pixels alone give without any spatial prior.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from synthscan.detectors.base import Detector, DetectorConfig, InputPolicy

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class MLPConfig(DetectorConfig):
    input: InputPolicy = Field(
        default_factory=lambda: InputPolicy(mode="resize", crop_size=32, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    )
    hidden: tuple[int, int] = (128, 32)


class MLPDetector(Detector):
    name = "mlp"
    small_config = dict(hidden=(16, 8))  # for the contract test and smoke runs
    Config = MLPConfig

    def __init__(self, config: MLPConfig | None = None):
        super().__init__(config)
        size, (h1, h2) = self.config.input.crop_size, self.config.hidden
        self.layers = nn.Sequential(
            nn.Flatten(), nn.Linear(3 * size * size, h1), nn.ReLU(inplace=True),
            nn.Linear(h1, h2), nn.ReLU(inplace=True), nn.Linear(h2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.normalise(x)).squeeze(1)

    def attribution_layers(self) -> dict[str, nn.Module]:
        return {"hidden1": self.layers[1]}

"""LeNet-style CNN baseline (report 004, "Identifying AI-generated Images").

The report's "convolution" model: conv 5x5 (6) -> max-pool -> conv 5x5 (16) -> max-pool ->
FC 128 -> FC 32 -> logit, ReLU after each layer. It sees the whole image resized to 32x32 (the
CIFAKE size of synthbench's 32 track), so both pools are 2x2 as in LeNet-5; the report's 8x8
second pool only served its 224-px input.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from synthscan.detectors.base import Detector, DetectorConfig, InputPolicy
from synthscan.detectors.mlp import IMAGENET_MEAN, IMAGENET_STD


class LeNetConfig(DetectorConfig):
    input: InputPolicy = Field(
        default_factory=lambda: InputPolicy(mode="resize", crop_size=32, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    )
    channels: tuple[int, int] = (6, 16)
    hidden: tuple[int, int] = (128, 32)


class LeNetDetector(Detector):
    name = "lenet"
    small_config = {}  # for the contract test and smoke runs
    Config = LeNetConfig

    def __init__(self, config: LeNetConfig | None = None):
        super().__init__(config)
        c = self.config
        (c1, c2), (h1, h2) = c.channels, c.hidden
        self.conv1 = nn.Sequential(nn.Conv2d(3, c1, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2))
        self.conv2 = nn.Sequential(nn.Conv2d(c1, c2, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2))
        side = ((c.input.crop_size - 4) // 2 - 4) // 2  # two valid 5x5 convs, two 2x2 pools
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(c2 * side * side, h1), nn.ReLU(inplace=True),
            nn.Linear(h1, h2), nn.ReLU(inplace=True), nn.Linear(h2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv2(self.conv1(self.normalise(x)))).squeeze(1)

    def attribution_layers(self) -> dict[str, nn.Module]:
        return {"conv2": self.conv2, "conv1": self.conv1}

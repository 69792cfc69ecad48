"""ResNet-18 trained from scratch (report 004, "Identifying AI-generated Images").

Written with torch.nn (no torchvision): basic blocks [2, 2, 2, 2] at widths 64-128-256-512.
It sees the whole image resized to 32x32 (the CIFAKE size of synthbench's 32 track), so the stem
is the CIFAR variant (3x3 stride-1 conv, no max-pool): the ImageNet stem would shrink a 32-px
image to 8 px before the first block.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from synthscan.detectors.base import Detector, DetectorConfig, InputPolicy
from synthscan.detectors.mlp import IMAGENET_MEAN, IMAGENET_STD


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = (
            nn.Identity() if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class ResNet18Config(DetectorConfig):
    input: InputPolicy = Field(
        default_factory=lambda: InputPolicy(mode="resize", crop_size=32, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    )
    widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    blocks: tuple[int, int, int, int] = (2, 2, 2, 2)


class ResNet18ScratchDetector(Detector):
    name = "resnet18-scratch"
    small_config = dict(widths=(8, 8, 16, 16))  # for the contract test and smoke runs
    Config = ResNet18Config

    def __init__(self, config: ResNet18Config | None = None):
        super().__init__(config)
        c = self.config
        self.stem = nn.Sequential(nn.Conv2d(3, c.widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(c.widths[0]), nn.ReLU(inplace=True))
        c_in, layers = c.widths[0], []
        for i, (width, n) in enumerate(zip(c.widths, c.blocks)):
            blocks = [BasicBlock(c_in if j == 0 else width, width, 2 if i > 0 and j == 0 else 1) for j in range(n)]
            layers.append(nn.Sequential(*blocks))
            c_in = width
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.fc = nn.Linear(c.widths[3], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(self.normalise(x))
        h = self.layer4(self.layer3(self.layer2(self.layer1(h))))
        return self.fc(h.mean((2, 3))).squeeze(1)

    def attribution_layers(self) -> dict[str, nn.Module]:
        return {"layer4": self.layer4, "layer3": self.layer3}

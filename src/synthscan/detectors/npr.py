"""NPR: Neighbouring Pixel Relationships (report 003; Tan et al., CVPR 2024).

Generators up-sample: a pixel and its neighbours inside each s x s block are computed together,
so the residual `x - up(down(x))` (nearest, factor s) carries the generator's up-sampling
fingerprint while cancelling most image content. This detector fuses that residual at several
scales with learned softmax weights, then a small CNN with (switchable) channel and spatial
attention classifies it. It is sized for CPU speed (~0.3 GFLOP at 256x256).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from synthscan.detectors.base import Detector, DetectorConfig, InputPolicy


def npr_residual(x: torch.Tensor, factor: int) -> torch.Tensor:
    """x - nearest_up(nearest_down(x)); H and W must be multiples of `factor`."""
    down = x[:, :, ::factor, ::factor]
    return x - down.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)


class ChannelAttention(nn.Module):
    """CBAM channel attention: sigmoid(MLP(avg-pool) + MLP(max-pool))."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.sigmoid(self.mlp(x.mean((2, 3))) + self.mlp(x.amax((2, 3))))
        return x * weights[:, :, None, None]


class SpatialAttention(nn.Module):
    """CBAM spatial attention: sigmoid(conv7x7([mean; max] over channels))."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size=7, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(pooled))


def conv_bn(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class ResidualConv(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.conv(x))


class NPRConfig(DetectorConfig):
    input: InputPolicy = Field(default_factory=lambda: InputPolicy(mode="tiles", crop_size=256))
    scales: tuple[int, ...] = (2, 4)
    multiscale_fusion: bool = True  # learned softmax weights over scales; False: first scale only
    channel_attention: bool = True
    spatial_attention: bool = False
    widths: tuple[int, int, int, int] = (24, 32, 64, 128)
    residual_gain: float = 4.0  # residuals are small; a fixed gain keeps the first BN well scaled
    dropout: float = 0.2


class NPRDetector(Detector):
    name = "npr"
    small_config = dict(input=InputPolicy(crop_size=64), widths=(8, 8, 16, 16))  # for the contract test and smoke runs
    Config = NPRConfig

    def __init__(self, config: NPRConfig | None = None):
        super().__init__(config)
        c = self.config
        self.scale_logits = nn.Parameter(torch.zeros(len(c.scales)))
        w1, w2, w3, w4 = c.widths
        self.stage1 = conv_bn(3, w1, 2)
        self.stage2 = nn.Sequential(conv_bn(w1, w2, 2), ResidualConv(w2))
        self.stage3 = nn.Sequential(conv_bn(w2, w3, 2), ResidualConv(w3))
        self.stage4 = conv_bn(w3, w4, 2)
        self.channel_attention = ChannelAttention(w4) if c.channel_attention else nn.Identity()
        self.spatial_attention = SpatialAttention() if c.spatial_attention else nn.Identity()
        self.head = nn.Sequential(nn.Dropout(c.dropout), nn.Linear(w4, 1))

    def npr(self, x: torch.Tensor) -> torch.Tensor:
        """The fused multi-scale NPR map the CNN sees (also a trace view for explanations)."""
        scales = self.config.scales if self.config.multiscale_fusion else self.config.scales[:1]
        residuals = torch.stack([npr_residual(x, s) for s in scales])
        weights = torch.softmax(self.scale_logits[: len(scales)], dim=0)
        return (weights[:, None, None, None, None] * residuals).sum(0) * self.config.residual_gain

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stage4(self.stage3(self.stage2(self.stage1(self.npr(x)))))
        return self.spatial_attention(self.channel_attention(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3))).squeeze(1)

    def attribution_layers(self) -> dict[str, nn.Module]:
        return {"stage4": self.stage4, "stage3": self.stage3, "stage2": self.stage2}

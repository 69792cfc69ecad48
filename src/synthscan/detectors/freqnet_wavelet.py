"""FreqNet + wavelet-attention ResNet hybrid (report 002, "Fake Image Classification and Artifact Detection").

Generators leave their traces mostly in high frequencies, so every part of this network looks
there:
- HFRI (high-frequency representation of the image): FFT of the input, low frequencies zeroed,
  inverse FFT. The FreqNet branch and the ResNet both start from it.
- FreqNet branch: alternating HFRFS blocks (the same high-pass, on feature maps, then a conv)
  and FCL blocks (convolutions on the amplitude and on the phase spectrum, recombined in polar
  form, inverse FFT), each stage ending in a stride-2 conv.
- Bottleneck ResNet whose down-sampling is a wavelet-attention stride: a Haar DWT splits a map
  into LL, LH, HL, HH; a softmax over the three detail bands picks, at each position, which
  detail to keep; it is added to LL and a 1x1 conv sets the width.
- Fusion: after each ResNet stage that has a FreqNet stage at the same resolution, the FreqNet
  features (1x1-projected) are added to the ResNet stream; then average pooling and a linear head.

`freqnet` / `wavelet` switch the two ideas for the report's ablation (both off leaves a plain
bottleneck ResNet on the HFRI input). The Haar DWT is written as a fixed stride-2 depthwise
conv2d (no wavelet package needed). Widths are small by default for CPU training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from synthscan.detectors.base import Detector, DetectorConfig, InputPolicy


def high_pass(x: torch.Tensor, cutoff: float) -> torch.Tensor:
    """Zero the frequencies with |fy| and |fx| both below `cutoff` x Nyquist, back to space."""
    h, w = x.shape[-2:]
    spec = torch.fft.rfft2(x.float(), norm="ortho")
    fy = torch.fft.fftfreq(h, device=x.device).abs()[:, None]
    fx = torch.fft.rfftfreq(w, device=x.device)[None, :]
    low = (fy < cutoff * 0.5) & (fx < cutoff * 0.5)
    return torch.fft.irfft2(spec * (~low), s=(h, w), norm="ortho")


def conv_bn_relu(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)
    )


class HFRFS(nn.Module):
    """High-frequency representation of features: high-pass the feature maps, then a conv."""

    def __init__(self, channels: int, cutoff: float):
        super().__init__()
        self.cutoff = cutoff
        self.conv = conv_bn_relu(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(high_pass(x, self.cutoff))


class FCL(nn.Module):
    """Frequency convolution layer: 1x1 convs on amplitude and phase, recombined, inverse FFT."""

    def __init__(self, channels: int):
        super().__init__()
        self.amplitude = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.ReLU(inplace=True), nn.Conv2d(channels, channels, 1))
        self.phase = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.ReLU(inplace=True), nn.Conv2d(channels, channels, 1))
        self.norm = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        # + eps: abs() and angle() have no gradient at an exactly-zero coefficient (a dead channel)
        spec = torch.fft.rfft2(x.float(), norm="ortho") + 1e-6
        amplitude, phase = self.amplitude(spec.abs()), self.phase(spec.angle())
        out = torch.fft.irfft2(torch.polar(F.relu(amplitude), phase), s=(h, w), norm="ortho")
        return F.relu(self.norm(out) + x)


class HaarDWT(nn.Module):
    """One-level 2-D Haar transform as a fixed depthwise stride-2 conv: (N,C,H,W) -> 4 x (N,C,H/2,W/2)."""

    def __init__(self):
        super().__init__()
        lo, hi = torch.tensor([1.0, 1.0]) / 2**0.5, torch.tensor([1.0, -1.0]) / 2**0.5
        filters = torch.stack([torch.outer(a, b) for a, b in ((lo, lo), (hi, lo), (lo, hi), (hi, hi))])
        self.register_buffer("filters", filters[:, None], persistent=False)  # LL, LH, HL, HH

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n, c, h, w = x.shape
        x = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")
        bands = F.conv2d(x.reshape(n * c, 1, *x.shape[-2:]), self.filters, stride=2)
        bands = bands.reshape(n, c, 4, *bands.shape[-2:])
        return bands.unbind(2)


class WaveletAttentionStride(nn.Module):
    """Down-sample by 2 with a Haar DWT: LL plus the detail bands weighted by a softmax
    attention over (LH, HL, HH) at each position, then a 1x1 conv to the output width."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.dwt = HaarDWT()
        self.band_scores = nn.Conv2d(3 * c_in, 3, 1)
        self.project = nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ll, lh, hl, hh = self.dwt(x)
        details = torch.stack([lh, hl, hh], dim=1)  # (N, 3, C, H, W)
        attention = torch.softmax(self.band_scores(torch.cat([lh, hl, hh], dim=1)), dim=1)
        return self.project(ll + (attention[:, :, None] * details).sum(1))


class Bottleneck(nn.Module):
    """ResNet bottleneck (1x1, 3x3, 1x1) with an identity or 1x1 projection shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        mid = max(c_out // 2, 4)
        self.body = nn.Sequential(
            conv_bn_relu(c_in, mid, 1), conv_bn_relu(mid, mid, 3, stride),
            nn.Conv2d(mid, c_out, 1, bias=False), nn.BatchNorm2d(c_out),
        )
        self.shortcut = (
            nn.Identity() if c_in == c_out and stride == 1
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class FreqNetConfig(DetectorConfig):
    # 128-px tiles (a 256x256 image is 4 tiles); the report trained on 32x32 CIFAKE images.
    input: InputPolicy = Field(default_factory=lambda: InputPolicy(mode="tiles", crop_size=128, max_tiles=16))
    freqnet: bool = True  # the FreqNet branch (HFRFS + FCL) fused into the ResNet
    wavelet: bool = True  # wavelet-attention strides; False: strided convolutions
    hfri_cutoff: float = 0.25  # fraction of Nyquist suppressed (low frequencies) on the input
    feature_cutoff: float = 0.25  # the same for HFRFS blocks on feature maps
    widths: tuple[int, int, int, int] = (16, 32, 64, 96)  # ResNet stages; FreqNet matches the first three
    blocks: tuple[int, int, int, int] = (1, 1, 1, 1)
    input_gain: float = 8.0  # the HFRI image is small in amplitude; a fixed gain keeps the stem well scaled
    dropout: float = 0.2


class FreqNetWaveletDetector(Detector):
    name = "freqnet-wavelet"
    small_config = dict(input=InputPolicy(crop_size=32), widths=(8, 8, 16, 16))  # for the contract test and smoke runs
    Config = FreqNetConfig

    def __init__(self, config: FreqNetConfig | None = None):
        super().__init__(config)
        c = self.config
        w = c.widths

        def down(c_in: int, c_out: int) -> nn.Module:
            return WaveletAttentionStride(c_in, c_out) if c.wavelet else conv_bn_relu(c_in, c_out, 3, 2)

        # ResNet: 7x7 stride-2 stem, down-sample, stage 1; each later stage down-samples first.
        self.stem = nn.Sequential(conv_bn_relu(3, w[0], 7, 2), down(w[0], w[0]))
        self.stages = nn.ModuleList()
        for i, (width, n_blocks) in enumerate(zip(w, c.blocks)):
            first = nn.Identity() if i == 0 else down(w[i - 1], width)
            self.stages.append(nn.Sequential(first, *(Bottleneck(width, width) for _ in range(n_blocks))))
        # FreqNet: one stage per ResNet stage 1-3, at the same resolutions (1/4, 1/8, 1/16).
        if c.freqnet:
            self.freq_stem = conv_bn_relu(3, w[0], 3, 2)
            self.freq_stages = nn.ModuleList(
                nn.Sequential(HFRFS(a, c.feature_cutoff), FCL(a), conv_bn_relu(a, b, 3, 2))
                for a, b in zip((w[0], *w[:2]), w[:3])
            )
            self.fuse = nn.ModuleList(nn.Conv2d(b, b, 1) for b in w[:3])
        self.head = nn.Sequential(nn.Dropout(c.dropout), nn.Linear(w[3], 1))

    def hfri(self, x: torch.Tensor) -> torch.Tensor:
        """The high-frequency representation of the image both branches start from."""
        return high_pass(self.normalise(x), self.config.hfri_cutoff) * self.config.input_gain

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.hfri(x)
        h = self.stem(x)
        f = self.freq_stem(x) if self.config.freqnet else None
        for i, stage in enumerate(self.stages):
            h = stage(h)
            if f is not None and i < len(self.freq_stages):
                f = self.freq_stages[i](f)
                h = h + self.fuse[i](f)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3))).squeeze(1)

    def attribution_layers(self) -> dict[str, nn.Module]:
        layers = {"stage4": self.stages[3], "stage3": self.stages[2]}
        if self.config.freqnet:
            layers["freqnet3"] = self.freq_stages[2]
        return layers

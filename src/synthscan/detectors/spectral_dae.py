"""Residual-spectrum CNN (report 000, "Cracking the Synthetic Code").

A small U-Net denoising autoencoder, trained on real photos only, predicts the clean image; the
noise residual `x - DAE(x)` keeps what a camera pipeline would not produce. Its centred
log-magnitude Fourier spectrum shows generator fingerprints (periodic up-sampling peaks, missing
or boosted high frequencies), and a CNN classifies that spectrum.

Optionally (`sr`), each input is first up-scaled, as the report does with an SRGAN before the
DAE to make the traces of small images (CIFAKE's 32 px) visible: either bicubic, or a small
ESPCN-style network the project trains itself on real photos (down-scale, learn to restore).

Training runs in stages (see `train/trainer.py`): the learned SR network (when `sr="learned"`),
then the DAE, each on reals only and then frozen, then the CNN. Sized down from the report
(3 U-Net levels instead of 5) for CPU speed.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from synthscan.detectors.base import Detector, DetectorConfig, InputPolicy


class UNetDAE(nn.Module):
    def __init__(self, widths: tuple[int, ...], dropout: float):
        super().__init__()
        chans = (3, *widths)
        self.down = nn.ModuleList(
            nn.Sequential(nn.Conv2d(a, b, 3, 2, 1), nn.ReLU(inplace=True), nn.Dropout2d(dropout))
            for a, b in zip(chans[:-1], chans[1:])
        )
        # Decoder level i takes the previous level's output concatenated with the skip.
        self.up = nn.ModuleList()
        for i in reversed(range(len(widths))):
            c_in = chans[i + 1] * (1 if i == len(widths) - 1 else 2)
            c_out = chans[i] if i > 0 else 8
            self.up.append(
                # conv at the low resolution, then up-sample: 4x cheaper than the other order
                nn.Sequential(nn.Conv2d(c_in, c_out, 3, 1, 1), nn.ReLU(inplace=True), nn.Upsample(scale_factor=2, mode="bilinear"))
            )
        self.out = nn.Conv2d(8 + 3, 3, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips, h = [], x
        for layer in self.down:
            h = layer(h)
            skips.append(h)
        skips.pop()
        for layer in self.up:
            h = layer(h)
            h = torch.cat([h, skips.pop() if skips else x], dim=1)
        return torch.sigmoid(self.out(h))


def bicubic_upscale(x: torch.Tensor, scale: int) -> torch.Tensor:
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)


class ESPCN(nn.Module):
    """Super-resolution after Shi et al. 2016 (ESPCN): convolutions at the low resolution, then a
    PixelShuffle turns scale*scale channels into a scale-times larger image. It predicts what a
    bicubic up-scale misses; its last layer starts at zero, so untrained it is exactly bicubic."""

    def __init__(self, scale: int, features: int):
        super().__init__()
        self.scale = scale
        last = nn.Conv2d(features // 2, 3 * scale * scale, 3, 1, 1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.body = nn.Sequential(
            nn.Conv2d(3, features, 5, 1, 2), nn.Tanh(),
            nn.Conv2d(features, features // 2, 3, 1, 1), nn.Tanh(),
            last, nn.PixelShuffle(scale),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return bicubic_upscale(x, self.scale) + self.body(x)


def log_spectrum(residual: torch.Tensor) -> torch.Tensor:
    """Centred log-magnitude FFT per channel, standardised per image."""
    spec = torch.fft.fftshift(torch.fft.fft2(residual.float(), norm="ortho"), dim=(-2, -1))
    mag = torch.log1p(spec.abs() * 255.0)
    return (mag - mag.mean((1, 2, 3), keepdim=True)) / (mag.std((1, 2, 3), keepdim=True) + 1e-6)


class SpectralDAEConfig(DetectorConfig):
    # 128-px tiles: the spectrum's layout depends on the crop size, so training and inference
    # use the same one; a 256x256 image is scored as 4 tiles.
    input: InputPolicy = Field(default_factory=lambda: InputPolicy(mode="tiles", crop_size=128, max_tiles=64))
    sr: Literal["none", "bicubic", "learned"] = "none"  # up-scaling before the DAE (report: SRGAN)
    sr_scale: int = Field(2, ge=2, le=8)
    sr_features: int = 32  # width of the learned SR network
    dae_widths: tuple[int, ...] = (16, 32, 64)
    dae_dropout: float = 0.1
    dae_noise_sigma: float = 0.02  # training noise for the DAE, in [0, 1] units
    cnn_widths: tuple[int, int, int] = (16, 32, 64)
    hidden: int = 128
    dropout: float = 0.3


class SpectralDAEDetector(Detector):
    name = "spectral-dae"
    small_config = dict(input=InputPolicy(crop_size=64), dae_widths=(4, 8, 8), cnn_widths=(4, 8, 8), hidden=16)  # for the contract test and smoke runs
    Config = SpectralDAEConfig

    def __init__(self, config: SpectralDAEConfig | None = None):
        super().__init__(config)
        c = self.config
        self.sr = ESPCN(c.sr_scale, c.sr_features) if c.sr == "learned" else None
        self.dae = UNetDAE(c.dae_widths, c.dae_dropout)
        a, b, d = c.cnn_widths
        block = lambda i, o: nn.Sequential(nn.Conv2d(i, o, 3, 1, 1), nn.BatchNorm2d(o), nn.ReLU(inplace=True), nn.MaxPool2d(2))
        # A stride-2 max-pool first: spectra are large and peaks survive max-pooling.
        self.cnn = nn.Sequential(nn.MaxPool2d(2), block(3, a), block(a, b), block(b, d))
        self.pool = nn.AdaptiveMaxPool2d(8)  # keeps a coarse frequency layout for the FC layers
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(d * 64, c.hidden), nn.ReLU(inplace=True), nn.Dropout(c.dropout), nn.Linear(c.hidden, 1)
        )

    def upscale(self, x: torch.Tensor) -> torch.Tensor:
        """The configured SR stage (identity for sr="none"), clipped to the [0, 1] image range."""
        if self.config.sr == "none":
            return x
        up = self.sr(x) if self.sr is not None else bicubic_upscale(x, self.config.sr_scale)
        return up.clamp(0, 1)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """What the DAE removes from `x` (an already up-scaled image, when SR is on)."""
        return x - self.dae(x)

    def spectrum(self, x: torch.Tensor) -> torch.Tensor:
        """The spectrum the CNN classifies: up-scale, DAE residual, centred log-magnitude FFT."""
        return log_spectrum(self.residual(self.upscale(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.cnn(self.spectrum(x)))).squeeze(1)

    def real_only_stages(self) -> list[str]:
        return ["sr", "dae"] if self.sr is not None else ["dae"]

    def sr_loss(self, clean: torch.Tensor) -> torch.Tensor:
        """Self-supervised SR: box-down-scale real crops by `sr_scale`, learn to restore them."""
        s = self.config.sr_scale
        clean = clean[..., : clean.shape[-2] // s * s, : clean.shape[-1] // s * s]
        return F.mse_loss(self.sr(F.avg_pool2d(clean, s)), clean)

    def dae_loss(self, clean: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # the DAE learns the images it will see: up-scaled ones when SR is on
            clean = self.upscale(clean)
        noisy = (clean + torch.randn_like(clean) * self.config.dae_noise_sigma).clamp(0, 1)
        return F.mse_loss(self.dae(noisy), clean)

    def classifier_parameters(self):
        return [p for n, p in self.named_parameters() if not n.startswith(("sr.", "dae."))]

    def attribution_layers(self) -> dict[str, nn.Module]:
        return {"cnn": self.cnn, "dae": self.dae}

    def denoiser(self):
        return self.denoise

    @torch.inference_mode()
    def denoise(self, x: torch.Tensor) -> torch.Tensor:
        """The DAE's output for a [0, 1] batch of any size (the U-Net halves the size at each level:
        reflect-padded to a multiple of 2**levels, then cropped back)."""
        h, w = x.shape[-2:]
        multiple = 2 ** len(self.dae.down)
        padded = F.pad(x, (0, -w % multiple, 0, -h % multiple), mode="reflect")
        return self.dae.eval()(padded)[..., :h, :w]

    def stage_loss(self, stage: str, real: torch.Tensor) -> torch.Tensor:
        return {"sr": self.sr_loss, "dae": self.dae_loss}[stage](real)

    def trainable_parameters(self):
        return self.classifier_parameters()

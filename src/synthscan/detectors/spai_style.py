"""SPAI-style spectral out-of-distribution detector (report 003's third option).

After SPAI (Karageorgiou et al., "Any-resolution AI-generated image detection by spectral
learning", CVPR 2025), much smaller and trained from scratch.

Stage 1, real images only (`vit_loss`): a small ViT sees an image whose spectrum has lost
one radial band (either the frequencies below `mask_radius` or those above it, drawn at random)
and a linear patch decoder reconstructs the full image; the loss is the L1 distance of the two
Fourier spectra. The network thus learns what the spectrum of a real photo looks like.

Stage 2 (`classifier_parameters`): with the ViT frozen, each image gives out-of-distribution
features, and a small head turns them into a logit:
- spectral reconstruction similarity: per ViT block, the cosine similarity of the CLS token of
  the original image with that of its low-pass view and of its high-pass view (2 x depth);
- the reconstruction-error spectrum: from each masked view, |FFT(reconstruction) - FFT(image)|
  averaged in `spectrum_bins` radial frequency rings (2 x bins).
Real images are reconstructed well and keep their features under masking; generated images,
whose spectra the ViT never learned, do less so.

`cnn_fusion=True` is report 003's "ViT+CNN" variant: a 2-layer CNN (BN, ReLU) gives the local
texture the ViT lacks; its globally averaged features and the ViT's final CLS token are
concatenated to the head's input (and the CNN is trained with the head). Sized for CPU (64-px
tiles, ViT of width 64 and depth 4 instead of ViT-B/16 at 224).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from synthscan.detectors.base import Detector, DetectorConfig, InputPolicy


def radial_frequency(h: int, w: int, device=None) -> torch.Tensor:
    """|f| of each FFT coefficient, as a fraction of Nyquist (1.0 at the edge of either axis)."""
    fy = torch.fft.fftfreq(h, device=device)[:, None]
    fx = torch.fft.fftfreq(w, device=device)[None, :]
    return torch.sqrt(fy**2 + fx**2) / 0.5


def band_views(x: torch.Tensor, radius: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(low-pass view, high-pass view) of x: the spectrum inside / outside `radius`."""
    spec = torch.fft.fft2(x.float(), norm="ortho")
    low = (radial_frequency(*x.shape[-2:], device=x.device) < radius).to(spec.dtype)
    to_image = lambda s: torch.fft.ifft2(s, norm="ortho").real
    return to_image(spec * low), to_image(spec * (1 - low))


class MaskedFrequencyViT(nn.Module):
    """A ViT encoder (per-block tokens kept) plus a linear decoder from patch tokens to pixels."""

    def __init__(self, size: int, patch: int, dim: int, depth: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.patch = patch
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + (size // patch) ** 2, dim) * 0.02)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, heads, dim * mlp_ratio, dropout=0.0, activation="gelu",
                                       batch_first=True, norm_first=True)
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.decoder = nn.Linear(dim, patch * patch * 3)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Tokens (N, 1 + patches, dim) after each block; index 0 of each is the CLS token."""
        patches = self.patch_embed(x).flatten(2).transpose(1, 2)
        h = torch.cat([self.cls_token.expand(len(x), -1, -1), patches], dim=1) + self.pos_embed
        out = []
        for block in self.blocks:
            h = block(h)
            out.append(h)
        return out

    def decode(self, tokens: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        pixels = self.decoder(self.norm(tokens[:, 1:])).transpose(1, 2)  # (N, 3 * p * p, patches)
        return F.fold(pixels, size, self.patch, stride=self.patch)


class SpaiStyleConfig(DetectorConfig):
    input: InputPolicy = Field(default_factory=lambda: InputPolicy(mode="tiles", crop_size=64, max_tiles=16))
    patch_size: int = 8
    dim: int = 64
    depth: int = 4
    heads: int = 4
    mlp_ratio: int = 2
    mask_radius: float = 0.25  # band edge as a fraction of Nyquist (SPAI: radius 16 of a 224 spectrum)
    spectrum_bins: int = 8  # radial rings of the reconstruction-error spectrum
    cnn_fusion: bool = False  # report 003's ViT+CNN variant
    cnn_widths: tuple[int, int] = (16, 32)
    head_hidden: int = 32
    dropout: float = 0.3


class SpaiStyleDetector(Detector):
    name = "spai-style"
    small_config = dict(input=InputPolicy(crop_size=32), dim=16, depth=2, heads=2, spectrum_bins=4)  # for the contract test and smoke runs
    Config = SpaiStyleConfig

    def __init__(self, config: SpaiStyleConfig | None = None):
        super().__init__(config)
        c = self.config
        self.vit = MaskedFrequencyViT(c.input.crop_size, c.patch_size, c.dim, c.depth, c.heads, c.mlp_ratio)
        n_ood = 2 * c.depth + 2 * c.spectrum_bins
        self.ood_norm = nn.BatchNorm1d(n_ood)  # similarities ~1 and errors ~1e-2: standardise each
        n_in = n_ood
        if c.cnn_fusion:
            a, b = c.cnn_widths
            self.cnn = nn.Sequential(
                nn.Conv2d(3, a, 3, 2, 1, bias=False), nn.BatchNorm2d(a), nn.ReLU(inplace=True),
                nn.Conv2d(a, b, 3, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True),
            )
            n_in += c.dim + b
        self.head = nn.Sequential(
            nn.Linear(n_in, c.head_hidden), nn.GELU(), nn.Dropout(c.dropout), nn.Linear(c.head_hidden, 1)
        )

    # --- stage 1: masked frequency reconstruction on real images ---------------------------------

    def vit_loss(self, real: torch.Tensor) -> torch.Tensor:
        """L1 between the spectra of the image and of its reconstruction from one masked band."""
        x = self.normalise(real)
        low, high = band_views(x, self.config.mask_radius)
        keep_low = torch.rand(len(x), 1, 1, 1, device=x.device) < 0.5
        masked = torch.where(keep_low, low, high)
        recon = self.vit.decode(self.vit.encode(masked)[-1], x.shape[-2:])
        return (torch.fft.fft2(recon, norm="ortho") - torch.fft.fft2(x, norm="ortho")).abs().mean()

    def real_only_stages(self) -> list[str]:
        return ["vit"]

    def stage_loss(self, stage: str, real: torch.Tensor) -> torch.Tensor:
        return self.vit_loss(real)

    def trainable_parameters(self):
        return self.classifier_parameters()

    def classifier_parameters(self):
        vit = {id(p) for p in self.vit.parameters()}
        return [p for p in self.parameters() if id(p) not in vit]

    def train(self, mode: bool = True):
        super().train(mode)
        if not any(p.requires_grad for p in self.vit.parameters()):
            self.vit.eval()  # frozen after stage 1
        return self

    # --- stage 2: out-of-distribution features -> logit --------------------------------------

    def ood_features(self, x: torch.Tensor) -> torch.Tensor:
        """Spectral reconstruction similarities (2 x depth) and error spectrum (2 x bins) per image."""
        c = self.config
        x = self.normalise(x)
        size = x.shape[-2:]
        spec = torch.fft.fft2(x, norm="ortho")
        ring = (radial_frequency(*size, device=x.device).clamp(max=0.999) * c.spectrum_bins).long().flatten()
        ring_sizes = torch.bincount(ring, minlength=c.spectrum_bins).clamp(min=1)
        original = self.vit.encode(x)
        feats = []
        for view in band_views(x, c.mask_radius):
            tokens = self.vit.encode(view)
            feats.append(torch.stack([F.cosine_similarity(o[:, 0], v[:, 0], dim=-1) for o, v in zip(original, tokens)], 1))
            error = (torch.fft.fft2(self.vit.decode(tokens[-1], size), norm="ortho") - spec).abs().mean(1).flatten(1)
            per_ring = torch.zeros(len(x), c.spectrum_bins, device=x.device).index_add_(1, ring, error) / ring_sizes
            feats.append(torch.log(per_ring + 1e-6))
        return torch.cat(feats, dim=1), original[-1][:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ood, cls = self.ood_features(x)
        h = self.ood_norm(ood)
        if self.config.cnn_fusion:
            h = torch.cat([h, self.vit.norm(cls), self.cnn(self.normalise(x)).mean((2, 3))], dim=1)
        return self.head(h).squeeze(1)

    def attribution_layers(self) -> dict[str, nn.Module]:
        layers = {"cnn": self.cnn} if self.config.cnn_fusion else {}
        return {**layers, "patch_embed": self.vit.patch_embed, "last_block": self.vit.blocks[-1]}

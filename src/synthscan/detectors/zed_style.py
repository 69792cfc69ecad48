"""ZED-style zero-shot detector: how surprising an image is to a pixel predictor trained on real photos.

After ZED (Cozzolino et al., "Zero-Shot Detection of AI-Generated Images", ECCV 2024), much
smaller and without its lossless coder.

Stage 1, real photos only (`predictor`): a causal CNN (PixelCNN masks: each output sees only
the pixels above and to the left) predicts a discretised logistic distribution for each 8-bit
value of every pixel. It is trained by the negative log-likelihood of real photos, at full
resolution and 2x / 4x box-downsampled (the levels ZED's multi-resolution coder works at).

Features, per level: the actual coding cost NLL (bits per value), the entropy H the predictor
expected (bits per value) and their gap NLL - H. On the photos it learned from the predictor is
calibrated (NLL ~ H); an image from a generator need not be, and its gap drifts from zero.

Stage 2 (`head`): standardised features -> one logit, trained with fakes (the protocol in
`benchmarks/generalise.py` also scores the features without fakes, as a density of real photos).

Why a table for H: the exact entropy of a discretised logistic sums 256 bins per value; it
depends almost only on the scale s, so H(log s) is tabulated once (offsets averaged) and
interpolated. Values near 0 or 255, where the clipped distribution is not the tabulated one, are
left out of every mean.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from synthscan.detectors.base import Detector, DetectorConfig, InputPolicy

LOG_SCALE_RANGE = (-4.0, 5.0)  # log s in 8-bit steps: from far below one step to ~150 steps


class CausalConv2d(nn.Conv2d):
    """A convolution whose output at (i, j) sees inputs at rows < i, and at row i columns < j
    (mask "A", the first layer) or <= j (mask "B", later layers: their centre is already causal)."""

    def __init__(self, cin: int, cout: int, kernel: int, mask: str):
        super().__init__(cin, cout, kernel, padding=kernel // 2)
        m = torch.ones_like(self.weight)
        c = kernel // 2
        m[:, :, c, c + (mask == "B"):] = 0
        m[:, :, c + 1:] = 0
        self.register_buffer("mask", m, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


@functools.lru_cache(maxsize=1)
def logistic_entropy_table(points: int = 256, offsets: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """(log s grid, entropy in bits) of a logistic of scale s discretised to unit bins, averaged
    over where the mean falls inside a bin. Computed once per process (about 0.2 s)."""
    log_s = torch.linspace(*LOG_SCALE_RANGE, points, dtype=torch.float64)
    edges = torch.arange(-1000, 1001, dtype=torch.float64) + 0.5
    out = torch.zeros(points, dtype=torch.float64)
    for offset in torch.linspace(0, 1, offsets + 1, dtype=torch.float64)[:-1]:
        cdf = torch.sigmoid((edges[None] - offset) / log_s.exp()[:, None])
        p = (cdf[:, 1:] - cdf[:, :-1]).clamp(min=1e-300)
        out += -(p * p.log2()).sum(1) / offsets
    return log_s.float(), out.float()


class ZedStyleConfig(DetectorConfig):
    input: InputPolicy = Field(default_factory=lambda: InputPolicy(mode="tiles", crop_size=128, max_tiles=16))
    channels: int = 16
    middle_layers: int = 3  # 3x3 mask-"B" layers after the 7x7 mask-"A" one
    first_kernel: int = 7
    levels: int = 3  # full resolution, then 2x, 4x box-downsampled
    edge_margin: int = 4  # values this close to 0 or 255 are left out of the means


class ZedStyleDetector(Detector):
    name = "zed-style"
    small_config = dict(input=InputPolicy(crop_size=32), channels=8, middle_layers=1, first_kernel=3, levels=2)
    Config = ZedStyleConfig
    default_attribution = "occlusion"  # the score is a mean over the image: occlusion shows which parts move it

    def __init__(self, config: ZedStyleConfig | None = None):
        super().__init__(config)
        c = self.config
        layers: list[nn.Module] = [CausalConv2d(3, c.channels, c.first_kernel, "A"), nn.ReLU()]
        for _ in range(c.middle_layers):
            layers += [CausalConv2d(c.channels, c.channels, 3, "B"), nn.ReLU()]
        layers.append(CausalConv2d(c.channels, 6, 1, "B"))  # mean offset and log scale per colour
        with torch.no_grad():
            layers[-1].bias[3:] = 3.0  # start broad (s ~ 20 steps): early losses stay finite and smooth
        self.predictor = nn.Sequential(*layers)
        log_s, bits = logistic_entropy_table()
        self.register_buffer("entropy_log_s", log_s.clone(), persistent=False)  # clones: the table is cached
        self.register_buffer("entropy_bits", bits.clone(), persistent=False)
        self.feature_norm = nn.BatchNorm1d(3 * c.levels)
        self.head = nn.Linear(3 * c.levels, 1)

    # --- stage 1: lossless prediction of real photos ------------------------------------------

    def predict(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log scale) in 8-bit steps for every value of a (N, 3, H, W) batch of 0-255 values."""
        out = self.predictor(values / 127.5 - 1)
        mean = 127.5 + 127.5 * torch.tanh(out[:, :3])
        return mean, out[:, 3:].clamp(*LOG_SCALE_RANGE)

    @staticmethod
    def bits(values: torch.Tensor, mean: torch.Tensor, log_s: torch.Tensor) -> torch.Tensor:
        """-log2 P(value) under the discretised logistic, the end bins taking the tails."""
        inv_s = torch.exp(-log_s)
        upper = torch.where(values >= 255, torch.full_like(values, 1.0), torch.sigmoid((values + 0.5 - mean) * inv_s))
        lower = torch.where(values <= 0, torch.zeros_like(values), torch.sigmoid((values - 0.5 - mean) * inv_s))
        return -torch.log2((upper - lower).clamp(min=1e-12))

    def levels_of(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The batch as 8-bit values at each level (box-downsampled by 2 per level, re-quantised)."""
        values = (x * 255).round()
        out = [values]
        for _ in range(self.config.levels - 1):
            out.append(F.avg_pool2d(out[-1], 2).round())
        return out

    def stage_loss(self, stage: str, real: torch.Tensor) -> torch.Tensor:
        """Mean bits per value of a batch of real photos at one random level."""
        levels = self.levels_of(real)
        values = levels[int(torch.randint(len(levels), ()))]
        return self.bits(values, *self.predict(values)).mean()

    def real_only_stages(self) -> list[str]:
        return ["predictor"]

    def trainable_parameters(self):
        return [*self.feature_norm.parameters(), *self.head.parameters()]

    # --- stage 2: coding-cost features -> logit ------------------------------------------------

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3 x levels): mean NLL, mean expected entropy H and mean NLL - H (bits per value) at
        each level, over values away from 0 and 255 (and past the first row and column, which have
        no context)."""
        feats = []
        margin = self.config.edge_margin
        for values in self.levels_of(x):
            mean, log_s = self.predict(values)
            nll = self.bits(values, mean, log_s)
            h = self.expected_bits(log_s)
            keep = ((values >= margin) & (values <= 255 - margin)).float()
            keep[..., 0, :] = 0
            keep[..., :, 0] = 0
            n = keep.sum((1, 2, 3)).clamp(min=1)
            mean_nll, mean_h = (nll * keep).sum((1, 2, 3)) / n, (h * keep).sum((1, 2, 3)) / n
            feats += [mean_nll, mean_h, mean_nll - mean_h]
        return torch.stack(feats, 1)

    def expected_bits(self, log_s: torch.Tensor) -> torch.Tensor:
        """Entropy (bits) of the predicted distributions, from the table by linear interpolation."""
        grid = self.entropy_log_s
        step = (grid[-1] - grid[0]) / (len(grid) - 1)
        pos = ((log_s - grid[0]) / step).clamp(0, len(grid) - 1 - 1e-6)
        i = pos.floor().long()
        frac = pos - i
        return self.entropy_bits[i] * (1 - frac) + self.entropy_bits[i + 1] * frac

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.feature_norm(self.features(x))).squeeze(1)

    def attribution_layers(self) -> dict[str, nn.Module]:
        return {"predictor": self.predictor[-1]}

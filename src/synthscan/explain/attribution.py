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

Images are explained tile by tile, on the same crops `scan` scores (`detectors.tiling`), and
the tiles' maps are stitched back to the whole image, averaged where tiles overlap. A map is
then normalised to 0..1 by its maximum over the image. `top_regions` turns a map into boxes.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage

from synthscan.detectors.base import Detector
from synthscan.detectors.tiling import make_tiles, to_tensor_batch
from synthscan.explain.schema import Region

METHODS = (
    "gradcam", "saliency", "guided-backprop", "integrated-gradients",
    "occlusion", "kernel-shap", "lime", "activations", "tile-scores",
)  # fmt: skip
GRADIENT_METHODS = {"gradcam", "saliency", "guided-backprop", "integrated-gradients"}
TARGETS = {"real": 0, "fake": 1}
BASELINE_GREY = 0.5
SUPERPIXELS = 48  # SLIC segments per tile for Kernel-SHAP / LIME
PERTURBATION_SAMPLES = 64  # model calls per tile for Kernel-SHAP / LIME
IG_STEPS = 16
TILES_PER_BATCH = 8  # bounds memory for backward passes on large images


@dataclass
class AttributionMap:
    method: str  # one of METHODS; activation maps are "activations:<layer>"
    target: str  # "fake" or "real" ("any" for activation maps)
    values: np.ndarray  # (H, W) float32 in 0..1, the image's size
    coverage: float  # fraction of the image's pixels the explained tiles cover
    note: str = ""  # how to read this particular map, when the method's generic note is not enough
    warnings: list[str] = field(default_factory=list)
    regions: list[Region] | None = None  # the method's own regions; None: `top_regions` of `values`


class TwoClass(torch.nn.Module):
    """A detector seen as a 2-class classifier: column 0 = "real" (-logit), 1 = "fake" (logit)."""

    def __init__(self, detector: Detector):
        super().__init__()
        self.detector = detector

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logit = self.detector(x).float()
        return torch.stack([-logit, logit], dim=1)


def explain_tiles(detector: Detector, rgb: np.ndarray, method: str, target: str = "fake") -> list[AttributionMap]:
    """Maps for one image (H, W, 3) uint8: one map, or one per layer for "activations"."""
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; known: {', '.join(METHODS)}")
    if target not in TARGETS:
        raise ValueError(f"target must be 'fake' or 'real', not {target!r}")
    if method == "tile-scores":
        # Imported here: tile_scores builds on this module.
        from synthscan.explain.tile_scores import tile_score_map

        return [tile_score_map(detector, rgb, target)]
    detector = detector.eval()
    tiles = make_tiles(rgb, detector.input_policy)
    crops = to_tensor_batch(tiles.crops)
    per_layer: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(crops), TILES_PER_BATCH):
        batch = crops[start : start + TILES_PER_BATCH]
        for name, maps in _crop_maps(detector, batch, method, TARGETS[target]).items():
            per_layer.setdefault(name, []).append(maps)
    out = []
    for name, chunks in per_layer.items():
        resized = tiles.upscaled or detector.input_policy.mode == "resize"
        values, coverage = stitch(np.concatenate(chunks), tiles.boxes, rgb.shape[:2], resized=resized)
        out.append(AttributionMap(name, "any" if method == "activations" else target, normalise(values), coverage))
    return out


def _captum_attr():
    try:
        from captum import attr
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "attribution maps need captum: pip install 'synthscan[explain]'"
        ) from None
    return attr


def _crop_maps(detector: Detector, x: torch.Tensor, method: str, target: int) -> dict[str, np.ndarray]:
    """{method name: (N, crop, crop) float maps} for a batch of crops in [0, 1]."""
    attr = _captum_attr()

    model = TwoClass(detector)
    size = tuple(x.shape[-2:])
    x = x.clone().requires_grad_(method in GRADIENT_METHODS)  # captum warns when it has to set it
    if method == "gradcam":
        layer = _first_layer(detector)
        cam = attr.LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=True)
        maps = attr.LayerAttribution.interpolate(cam, size, interpolate_mode="bilinear")[:, 0]
    elif method == "saliency":
        maps = attr.Saliency(model).attribute(x, target=target, abs=True).amax(1)
    elif method == "guided-backprop":
        with warnings.catch_warnings():  # captum announces each time that it hooks ReLUs
            warnings.simplefilter("ignore", UserWarning)
            guided = attr.GuidedBackprop(TwoClass(_without_inplace_relu(detector)))
            maps = guided.attribute(x, target=target).abs().sum(1)
    elif method == "integrated-gradients":
        ig = attr.IntegratedGradients(model)
        maps = ig.attribute(x, baselines=BASELINE_GREY, target=target, n_steps=IG_STEPS,
                            internal_batch_size=4 * IG_STEPS).sum(1).clamp(min=0)
    elif method == "occlusion":
        window = max(size[0] // 4, 2)  # 7 x 7 windows per crop: 49 model calls
        maps = attr.Occlusion(model).attribute(
            x, sliding_window_shapes=(3, window, window), strides=(3, window // 2, window // 2),
            baselines=BASELINE_GREY, target=target, perturbations_per_eval=32,
        ).sum(1).clamp(min=0)
    elif method in ("kernel-shap", "lime"):
        maps = torch.cat([_superpixel_map(model, crop[None], method, target) for crop in x])
    else:  # activations
        return _activation_maps(detector, x)
    return {method: maps.detach().float().numpy()}


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


def stitch(
    maps: np.ndarray, boxes: Sequence[tuple[int, int, int, int]], shape: tuple[int, int], *, resized: bool = False
) -> tuple[np.ndarray, float]:
    """Per-crop maps (N, crop, crop) -> one (H, W) map, averaged where tiles overlap.

    A crop covers its box's pixels from its top-left corner (padding lies beyond the box); the
    maps of `resized` crops (upscaled small images, resize-mode detectors) are resized to their
    box. Pixels no tile covers (when an image needs more than `max_tiles` crops) stay 0; the
    returned coverage says which fraction is covered.
    """
    h, w = shape
    total = np.zeros((h, w), np.float64)
    count = np.zeros((h, w), np.float64)
    for crop_map, (x0, y0, x1, y1) in zip(maps, boxes):
        bw, bh = x1 - x0, y1 - y0
        if resized:
            patch = np.asarray(Image.fromarray(crop_map.astype(np.float32)).resize((bw, bh), Image.BILINEAR))
        else:
            patch = crop_map[:bh, :bw]
        total[y0:y1, x0:x1] += patch
        count[y0:y1, x0:x1] += 1
    covered = count > 0
    total[covered] /= count[covered]
    return total.astype(np.float32), float(covered.mean())


def normalise(values: np.ndarray) -> np.ndarray:
    """Scale a non-negative map to 0..1 by its maximum (all zeros stays all zeros)."""
    values = np.nan_to_num(np.maximum(values, 0)).astype(np.float32)
    peak = float(values.max()) if values.size else 0.0
    return values / peak if peak > 0 else values


def top_regions(
    values: np.ndarray, *, source: str = "gradcam", threshold: float = 0.5, max_regions: int = 3,
    min_area: float = 0.002,
) -> list[Region]:
    """Boxes around the connected areas where the 0..1 map is >= `threshold`, strongest first.

    Strength is the component's attribution mass (sum of the map over it), so a large clear
    area outranks a one-pixel spike; `Region.score` is the mean map value inside the box.
    Components smaller than `min_area` of the image are dropped as noise.
    """
    labels, n = ndimage.label(values >= threshold)
    if n == 0:
        return []
    index = np.arange(1, n + 1)
    mass = ndimage.sum(values, labels, index)
    area = ndimage.sum(np.ones_like(values), labels, index)
    slices = ndimage.find_objects(labels)
    regions = []
    for i in np.argsort(-mass):
        if area[i] < min_area * values.size:
            continue
        ys, xs = slices[i]
        box = (xs.start, ys.start, xs.stop, ys.stop)
        regions.append(Region(box=box, score=round(float(values[ys, xs].mean()), 4), source=source))
        if len(regions) == max_regions:
            break
    return regions


def supports(detector: Detector, method: str) -> bool:
    """Whether `method` can explain `detector`: Grad-CAM and activations need named layers, the
    gradient methods need a differentiable detector (texture-gbm is neither), perturbation
    methods (occlusion, Kernel-SHAP, LIME) work with any."""
    if method in ("gradcam", "activations"):
        return bool(detector.attribution_layers())
    if method in GRADIENT_METHODS:
        return any(p.requires_grad for p in detector.parameters())
    return True


def attribution_maps(
    detector: Detector, rgb: np.ndarray, methods: Sequence[str] = ("gradcam",), target: str = "fake"
) -> list[AttributionMap]:
    """All maps for `methods` (in order; "activations" adds one map per layer)."""
    return [m for method in methods for m in explain_tiles(detector, rgb, method, target)]

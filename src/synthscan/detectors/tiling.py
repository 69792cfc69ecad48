"""Any-resolution inference: cover an image with crops, score each, aggregate.

Rule (documented for users in the README):
- mode "tiles": along each axis, n = ceil(L / crop) crops, start positions spread evenly from 0
  to L - crop (so the whole image is covered and neighbouring crops overlap as little as
  possible). If rows x cols > max_tiles, an evenly spaced subset of max_tiles crops is kept
  (deterministic). Pixels are never rescaled.
- A side shorter than the crop is padded by mirroring (small_image="pad") or the image is upscaled
  bicubically so its short side equals the crop (small_image="upscale"); either way the result
  is flagged `padded` / an `upscaled` warning.
- mode "resize": the whole image is resized to crop x crop (semantic detectors only).
- jpeg_quality (optional): the image is first re-encoded as JPEG at that quality, at its own
  resolution (so on the 8 px grid of its last compression) when it has at most
  NATIVE_JPEG_MAX_PIXELS pixels; a larger image in "resize" mode is re-encoded after the resize,
  because a 12-megapixel round trip would cost ~0.17 s and the downscale wipes its own
  compression traces anyway.
- Aggregation: the image's logit is the mean of its tiles' logits, calibrated afterwards.
  The mean is robust to one odd tile; per-tile probabilities are kept in the result so a
  locally edited region stays visible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from synthscan.data.augment import jpeg
from synthscan.detectors.policy import InputPolicy

NATIVE_JPEG_MAX_PIXELS = 2_000_000


@dataclass
class Tiles:
    crops: np.ndarray  # (N, crop, crop, 3) uint8
    boxes: list[tuple[int, int, int, int]]  # x0, y0, x1, y1 in the original image's pixels
    padded: bool = False
    upscaled: bool = False


def spread_starts(length: int, crop: int, count: int) -> list[int]:
    """`count` crop starts spread evenly from 0 to `length - crop` (one crop: 0)."""
    if count <= 1:
        return [0]
    return [round(i * (length - crop) / (count - 1)) for i in range(count)]


def evenly_spaced(items: list, keep: int) -> list:
    """`keep` of `items`, evenly spread from the first to the last (all of them if fewer)."""
    if len(items) <= keep:
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, keep).round().astype(int)]


def make_tiles(rgb: np.ndarray, policy: InputPolicy) -> Tiles:
    crop = policy.crop_size
    h, w = rgb.shape[:2]
    quality = policy.jpeg_quality
    at_native = quality and (policy.mode == "tiles" or h * w <= NATIVE_JPEG_MAX_PIXELS)
    if at_native:
        rgb = jpeg(rgb, quality)
    if policy.mode == "resize":
        resized = np.array(Image.fromarray(rgb).resize((crop, crop), Image.BICUBIC))  # writable: torch warns otherwise
        if quality and not at_native:
            resized = np.array(jpeg(resized, quality))
        return Tiles(resized[None], [(0, 0, w, h)], upscaled=min(h, w) < crop)

    padded = upscaled = False
    if min(h, w) < crop and policy.small_image == "upscale":
        scale = crop / min(h, w)
        size = (max(crop, round(w * scale)), max(crop, round(h * scale)))
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.BICUBIC))
        upscaled = True
    elif min(h, w) < crop:
        # "symmetric" (edge pixel repeated) also works for 1-pixel-wide images, unlike "reflect".
        rgb = np.pad(rgb, ((0, max(0, crop - h)), (0, max(0, crop - w)), (0, 0)), mode="symmetric")
        padded = True

    sy = h / rgb.shape[0] if upscaled else 1.0
    sx = w / rgb.shape[1] if upscaled else 1.0
    (ys, xs) = (spread_starts(n, crop, math.ceil(n / crop)) for n in rgb.shape[:2])
    positions = evenly_spaced([(y, x) for y in ys for x in xs], policy.max_tiles)
    crops = np.stack([rgb[y : y + crop, x : x + crop] for y, x in positions])
    boxes = [
        (int(x * sx), int(y * sy), int(min(w, (x + crop) * sx)), int(min(h, (y + crop) * sy))) for y, x in positions
    ]
    return Tiles(np.ascontiguousarray(crops), boxes, padded=padded, upscaled=upscaled)


def to_tensor_batch(crops: np.ndarray):
    """(N, H, W, 3) uint8 -> float tensor (N, 3, H, W) in [0, 1]."""
    import torch

    return torch.from_numpy(crops).permute(0, 3, 1, 2).float().div_(255.0)


def score_tiles(logit_fn, tiles: list[Tiles], batch_size: int = 32, device=None) -> list[np.ndarray]:
    """Raw logits of every tile, batched across images: one array per image, in order.

    `logit_fn` maps a float batch (N, 3, H, W) to logits (N,): a detector or `CalibratedModel.logits`;
    batches go to `device` (default: that of the detector's parameters, else the CPU).
    `CalibratedModel.score_many` calls this for scans, training validation, recipes and maps.
    """
    import torch

    if not tiles:
        return []
    if device is None:
        first = next(logit_fn.parameters(), None) if isinstance(logit_fn, torch.nn.Module) else None
        device = first.device if first is not None else torch.device("cpu")  # parameter-free: texture-gbm
    crops = np.concatenate([t.crops for t in tiles])
    with torch.inference_mode():
        raw = torch.cat(
            [logit_fn(to_tensor_batch(crops[k : k + batch_size]).to(device)).cpu() for k in range(0, len(crops), batch_size)]
        ).numpy()
    return np.split(raw, np.cumsum([len(t.crops) for t in tiles])[:-1])

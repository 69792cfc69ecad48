"""Training augmentations that make trace detectors robust to how images travel.

Each transform takes and returns an RGB uint8 array (H, W, 3); the random ones draw from the
given `numpy.random.Generator`, so a seeded run is reproducible. PIL and numpy do the work.

`augment` composes them from an `AugmentConfig`: a crop to `crop_size` first (sometimes a
resized crop), then the steps named in `order`, each applied with its own probability and
drawing its strength from its own range. A step with probability 0 is skipped without drawing
from the generator. The config comes from keyword arguments or a config file's `[augment]`
table (`AugmentConfig(**table)`); unknown keys and out-of-range values are refused.
"""

from __future__ import annotations

import io
from typing import Annotated, Callable, Literal

import numpy as np
from PIL import Image, ImageFilter
from pydantic import ConfigDict, Field, model_validator
from pydantic.dataclasses import dataclass

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Step = Literal["flip", "vflip", "rotate", "blur", "jpeg", "webp", "noise"]


@dataclass(config=ConfigDict(extra="forbid"))
class AugmentConfig:
    crop_size: int = Field(256, gt=0)
    resized_crop_p: Probability = 0.2
    resized_crop_scale: tuple[float, float] = (0.8, 1.0)  # area fraction kept before resizing back
    flip_p: Probability = 0.5  # horizontal
    vflip_p: Probability = 0.0
    # Off by default: rotating resamples every pixel, which blurs the up-sampling traces that
    # trace detectors look for. Report 004 (semantic baselines) uses up to 10 degrees.
    rotate_p: Probability = 0.0
    rotate_degrees: float = Field(10.0, ge=0.0, le=45.0)  # angle drawn from [-d, d]
    blur_p: Probability = 0.25
    blur_sigma: tuple[float, float] = (0.2, 1.5)
    jpeg_p: Probability = 0.5
    jpeg_quality: tuple[int, int] = (65, 100)
    noise_p: Probability = 0.0
    noise_sigma: tuple[float, float] = (1.0, 4.0)  # in 0..255 units
    # Web processing (off by default): WebP re-encoding, and downscaling the whole image before
    # the crop, as sites shrink uploads (the detector then sees the smaller image's pixels).
    webp_p: Probability = 0.0
    webp_quality: tuple[int, int] = (60, 95)
    downscale_p: Probability = 0.0
    downscale_factor: tuple[float, float] = (0.5, 1.0)
    # Geometry first, then the degradations in the order images meet them (blur, save, noise).
    order: tuple[Step, ...] = ("flip", "vflip", "rotate", "blur", "jpeg", "webp", "noise")

    @model_validator(mode="after")
    def _check_ranges(self) -> "AugmentConfig":
        for name in ("resized_crop_scale", "blur_sigma", "jpeg_quality", "noise_sigma", "webp_quality", "downscale_factor"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(f"{name} must be a range [low, high] with 0 <= low <= high, got {[low, high]}")
        if not (0 < self.resized_crop_scale[0] and self.resized_crop_scale[1] <= 1):
            raise ValueError("resized_crop_scale must lie in (0, 1]")
        if not (1 <= self.jpeg_quality[0] and self.jpeg_quality[1] <= 100):
            raise ValueError("jpeg_quality must lie in [1, 100]")
        if not (1 <= self.webp_quality[0] and self.webp_quality[1] <= 100):
            raise ValueError("webp_quality must lie in [1, 100]")
        if not (0 < self.downscale_factor[0] and self.downscale_factor[1] <= 1):
            raise ValueError("downscale_factor must lie in (0, 1]")
        if len(set(self.order)) != len(self.order):
            raise ValueError(f"order names a step twice: {list(self.order)}")
        return self


def random_crop(img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    if h < size or w < size:  # pad small images as inference does
        img = np.pad(img, ((0, max(0, size - h)), (0, max(0, size - w)), (0, 0)), mode="symmetric")
        h, w = img.shape[:2]
    y = int(rng.integers(0, h - size + 1))
    x = int(rng.integers(0, w - size + 1))
    return img[y : y + size, x : x + size]


def random_resized_crop(img: np.ndarray, size: int, scale: tuple[float, float], rng) -> np.ndarray:
    h, w = img.shape[:2]
    side = int(round(min(h, w) * np.sqrt(rng.uniform(*scale))))
    crop = random_crop(img, max(side, 8), rng)
    return np.asarray(Image.fromarray(crop).resize((size, size), Image.BICUBIC))


def rotate(img: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate about the centre, keeping the size. The image is first mirror-padded by as much as
    the rotated frame reaches outside it, so the corners hold mirrored content, never the black
    fill a model could learn as a cue."""
    h, w = img.shape[:2]
    theta = np.deg2rad(abs(degrees))
    pad_y = int(np.ceil((w * np.sin(theta) + h * np.cos(theta) - h) / 2)) + 1
    pad_x = int(np.ceil((w * np.cos(theta) + h * np.sin(theta) - w) / 2)) + 1
    padded = np.pad(img, ((pad_y, pad_y), (pad_x, pad_x), (0, 0)), mode="symmetric")
    turned = np.asarray(Image.fromarray(padded).rotate(degrees, resample=Image.BILINEAR))
    return turned[pad_y : pad_y + h, pad_x : pad_x + w]


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=int(quality))
    return np.asarray(Image.open(buf).convert("RGB"))


def webp(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="WEBP", quality=int(quality))
    return np.asarray(Image.open(buf).convert("RGB"))


def web_copy(img: np.ndarray, rng: np.random.Generator, scale: tuple[float, float] = (0.5, 1.5),
             quality: tuple[int, int] = (60, 100)) -> np.ndarray:
    """The way an image usually reaches a user: resized by a random factor (a random resampling
    filter), then saved as JPEG or WebP at a random quality. Applied alike to real and fake
    images, it teaches a detector traces that survive the web rather than the one encoding of
    its training set."""
    h, w = img.shape[:2]
    factor = rng.uniform(*scale)
    size = (max(32, round(w * factor)), max(32, round(h * factor)))
    resample = (Image.BILINEAR, Image.BICUBIC, Image.LANCZOS)[int(rng.integers(3))]
    out = np.asarray(Image.fromarray(img).resize(size, resample))
    encode = jpeg if rng.random() < 0.5 else webp
    return encode(np.ascontiguousarray(out), int(rng.integers(quality[0], quality[1] + 1)))


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius=sigma)))


def gaussian_noise(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    noisy = img.astype(np.float32) + rng.normal(0.0, sigma, img.shape).astype(np.float32)
    return np.clip(noisy, 0, 255).astype(np.uint8)


Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def build_steps(cfg: AugmentConfig) -> list[tuple[float, Transform]]:
    """(probability, transform) for each step of `cfg.order` that can happen."""
    transforms: dict[str, tuple[float, Transform]] = {
        "flip": (cfg.flip_p, lambda img, rng: img[:, ::-1]),
        "vflip": (cfg.vflip_p, lambda img, rng: img[::-1]),
        "rotate": (cfg.rotate_p, lambda img, rng: rotate(img, rng.uniform(-cfg.rotate_degrees, cfg.rotate_degrees))),
        "blur": (cfg.blur_p, lambda img, rng: gaussian_blur(img, rng.uniform(*cfg.blur_sigma))),
        "jpeg": (cfg.jpeg_p, lambda img, rng: jpeg(img, rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))),
        "webp": (cfg.webp_p, lambda img, rng: webp(img, rng.integers(cfg.webp_quality[0], cfg.webp_quality[1] + 1))),
        "noise": (cfg.noise_p, lambda img, rng: gaussian_noise(img, rng.uniform(*cfg.noise_sigma), rng)),
    }
    return [transforms[name] for name in cfg.order if transforms[name][0] > 0]


def augment(img: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Downscale (sometimes), crop (sometimes resized) to `cfg.crop_size`, then each step of
    `cfg.order` with its probability."""
    if cfg.downscale_p > 0 and rng.random() < cfg.downscale_p:
        f = rng.uniform(*cfg.downscale_factor)
        h, w = img.shape[:2]
        img = np.asarray(Image.fromarray(img).resize((max(8, round(w * f)), max(8, round(h * f))), Image.BICUBIC))
    if cfg.resized_crop_p > 0 and rng.random() < cfg.resized_crop_p:
        out = random_resized_crop(img, cfg.crop_size, cfg.resized_crop_scale, rng)
    else:
        out = random_crop(img, cfg.crop_size, rng)
    for probability, transform in build_steps(cfg):
        if rng.random() < probability:
            out = transform(np.ascontiguousarray(out), rng)
    return np.ascontiguousarray(out)

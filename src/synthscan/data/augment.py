"""Training augmentations that make trace detectors robust to how images travel.

Each transform takes and returns an RGB uint8 array (H, W, 3) and draws from the given
`numpy.random.Generator`, so a seeded run is reproducible. PIL does the image work.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter


@dataclass
class AugmentConfig:
    crop_size: int = 256
    flip_p: float = 0.5
    jpeg_p: float = 0.5
    jpeg_quality: tuple[int, int] = (65, 100)
    blur_p: float = 0.25
    blur_sigma: tuple[float, float] = (0.2, 1.5)
    resized_crop_p: float = 0.2
    resized_crop_scale: tuple[float, float] = (0.8, 1.0)  # area fraction kept before resizing back
    noise_p: float = 0.0
    noise_sigma: tuple[float, float] = (1.0, 4.0)  # in 0..255 units


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


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=int(quality))
    return np.asarray(Image.open(buf).convert("RGB"))


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius=sigma)))


def gaussian_noise(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    noisy = img.astype(np.float32) + rng.normal(0.0, sigma, img.shape).astype(np.float32)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def augment(img: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Crop (sometimes resized), flip, then blur / JPEG / noise, each with its probability."""
    if rng.random() < cfg.resized_crop_p:
        out = random_resized_crop(img, cfg.crop_size, cfg.resized_crop_scale, rng)
    else:
        out = random_crop(img, cfg.crop_size, rng)
    if rng.random() < cfg.flip_p:
        out = out[:, ::-1]
    if rng.random() < cfg.blur_p:
        out = gaussian_blur(np.ascontiguousarray(out), rng.uniform(*cfg.blur_sigma))
    if rng.random() < cfg.jpeg_p:
        out = jpeg(np.ascontiguousarray(out), rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
    if rng.random() < cfg.noise_p:
        out = gaussian_noise(out, rng.uniform(*cfg.noise_sigma), rng)
    return np.ascontiguousarray(out)

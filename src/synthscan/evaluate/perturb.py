"""Perturbations images meet on their way to a user: re-compression, resizing, blur, crops,
noise, and whole chains (a social-network upload, a screenshot).

Each perturbation takes an RGB uint8 array (H, W, 3), a level and a `numpy.random.Generator`,
and returns an RGB uint8 array. Randomness (crop position, noise) comes only from the generator;
`rng_for` derives it from a seed, the image and the perturbation, so a sweep gives the same
pixels whatever the order or number of images. PIL and numpy do the work.

A spec on the command line is ``KIND:LEVEL[,LEVEL...]``, e.g. ``jpeg:95,75`` or ``chain:social``.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from synthscan.data.augment import gaussian_blur, gaussian_noise, jpeg, webp

SOCIAL_LONG_SIDE = 1080  # what Instagram/Facebook-style uploads keep
SCREENSHOT_SCALE = 0.8  # a 125% display scaling captured back at 100%
SCREENSHOT_BORDER = 24  # pixels of window chrome around the captured image


def png(img: np.ndarray) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return np.asarray(Image.open(buf).convert("RGB"))


def resize(img: np.ndarray, factor: float) -> np.ndarray:
    """Scale both sides by `factor` (bicubic, as most image pipelines), at least 8 px a side."""
    h, w = img.shape[:2]
    size = (max(8, round(w * factor)), max(8, round(h * factor)))
    return np.asarray(Image.fromarray(img).resize(size, Image.BICUBIC))


def crop(img: np.ndarray, keep: float, rng: np.random.Generator) -> np.ndarray:
    """Keep a `keep` fraction of each side, at a position drawn from `rng`."""
    h, w = img.shape[:2]
    ch, cw = max(8, round(h * keep)), max(8, round(w * keep))
    y = int(rng.integers(0, h - ch + 1)) if h > ch else 0
    x = int(rng.integers(0, w - cw + 1)) if w > cw else 0
    return np.ascontiguousarray(img[y : y + ch, x : x + cw])


def social(img: np.ndarray) -> np.ndarray:
    """A social-network upload: long side capped at 1080 px, mild sharpening, JPEG quality 80
    (sharpening before the save because the platform re-encodes what it sharpened)."""
    h, w = img.shape[:2]
    if max(h, w) > SOCIAL_LONG_SIDE:
        img = resize(img, SOCIAL_LONG_SIDE / max(h, w))
    sharp = Image.fromarray(img).filter(ImageFilter.UnsharpMask(radius=1, percent=50, threshold=2))
    return jpeg(np.asarray(sharp), 80)


def screenshot(img: np.ndarray) -> np.ndarray:
    """A screenshot of the image on screen: display scaling (resize), a light-grey window border,
    saved as PNG."""
    scaled = Image.fromarray(resize(img, SCREENSHOT_SCALE))
    framed = ImageOps.expand(scaled, border=SCREENSHOT_BORDER, fill=(236, 236, 236))
    return png(np.asarray(framed))


CHAINS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"social": social, "screenshot": screenshot}

# kind -> (function(img, level, rng), how a level is read, what the level means)
KINDS: dict[str, tuple[Callable, Callable[[str], object], str]] = {
    "jpeg": (lambda img, q, rng: jpeg(img, int(q)), float, "JPEG quality"),
    "webp": (lambda img, q, rng: webp(img, int(q)), float, "WebP quality"),
    "resize": (lambda img, f, rng: resize(img, f), float, "scale factor"),
    "blur": (lambda img, s, rng: gaussian_blur(img, s), float, "Gaussian sigma (px)"),
    "crop": (lambda img, k, rng: crop(img, k, rng), float, "fraction of each side kept"),
    "noise": (lambda img, s, rng: gaussian_noise(img, s, rng), float, "noise sigma (0..255)"),
    "chain": (lambda img, name, rng: CHAINS[name](img), str, "processing chain"),
}


@dataclass(frozen=True)
class Perturbation:
    kind: str
    level: float | str

    @property
    def label(self) -> str:
        level = f"{self.level:g}" if isinstance(self.level, float) else self.level
        return f"{self.kind}:{level}"

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.ascontiguousarray(KINDS[self.kind][0](np.ascontiguousarray(img), self.level, rng))


def _check_level(kind: str, level: float | str) -> None:
    ok = {
        "jpeg": lambda v: 1 <= v <= 100, "webp": lambda v: 1 <= v <= 100, "resize": lambda v: 0.05 <= v <= 8,
        "blur": lambda v: 0 <= v <= 50, "crop": lambda v: 0 < v <= 1, "noise": lambda v: 0 <= v <= 128,
        "chain": lambda v: v in CHAINS,
    }[kind]
    if not ok(level):
        hint = f" (known chains: {', '.join(CHAINS)})" if kind == "chain" else ""
        raise ValueError(f"{kind}: level {level!r} out of range{hint}")


def parse_spec(spec: str) -> list[Perturbation]:
    """``"jpeg:95,75"`` -> [Perturbation("jpeg", 95.0), Perturbation("jpeg", 75.0)]."""
    kind, sep, levels = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise ValueError(f"unknown perturbation {kind!r}; known: {', '.join(KINDS)}")
    if not sep or not levels.strip():
        raise ValueError(f"{spec!r}: give levels as {kind}:LEVEL[,LEVEL...]")
    out = []
    for raw in levels.split(","):
        try:
            level = KINDS[kind][1](raw.strip())
        except ValueError:
            raise ValueError(f"{spec!r}: {raw!r} is not a {KINDS[kind][2]}") from None
        _check_level(kind, level)
        out.append(Perturbation(kind, level))
    return out


def rng_for(seed: int, image_key: str, perturbation: Perturbation) -> np.random.Generator:
    """A generator that depends only on the seed, the image and the perturbation."""
    return np.random.default_rng([seed, zlib.crc32(image_key.encode()), zlib.crc32(perturbation.label.encode())])

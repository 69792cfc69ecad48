"""Shared fixtures: a tiny random-weight model and a folder of good and bad images, all in tmp_path.

Nothing here depends on bundled weights or on /work/shared: every model is random-weight and
every image is generated with numpy and PIL.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from synthscan.detectors.base import Calibration, CalibratedModel, DetectorConfig, InputPolicy, ModelInfo
from synthscan.detectors.npr import NPRConfig, NPRDetector
from synthscan.result import Decision

# The models here are tiny: one thread avoids oversubscribing a busy CI machine (and is faster).
torch.set_num_threads(1)

TINY_CROP = 64
TINY_MAX_TILES = 16
# Non-identity calibration so that tests notice when it is skipped or applied twice.
TINY_CALIBRATION = Calibration(scale=1.7, bias=-0.3, fitted_on="test")
TINY_DECISION = Decision(threshold=0.5, uncertain_low=0.45, uncertain_high=0.55)

# The files `image_folder` writes: name -> (height, width) for images, name -> error code otherwise.
GOOD_IMAGES = {
    "big.png": (150, 200),  # larger than the crop: 3 x 4 tiles at 64 px
    "photo.jpg": (96, 128),  # 2 x 2 tiles
    "small.png": (40, 50),  # smaller than the crop: mirror-padded, 1 tile
    "square.png": (64, 64),  # exactly one crop
}
BAD_FILES = {
    "empty.png": "empty",
    "notes.jpg": "not-an-image",
    "trunc.jpg": "truncated",
}


class TinyTilesConfig(DetectorConfig):
    """The config of the tests' small fake detectors: 64 px tiles, at most 16."""

    input: InputPolicy = InputPolicy(mode="tiles", crop_size=TINY_CROP, max_tiles=TINY_MAX_TILES)


def noise_rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def tiny_npr(**overrides) -> NPRDetector:
    cfg = dict(
        input=InputPolicy(mode="tiles", crop_size=TINY_CROP, max_tiles=TINY_MAX_TILES),
        widths=(8, 8, 16, 16),
    )
    cfg.update(overrides)
    return NPRDetector(NPRConfig(**cfg))


def _warm_batchnorm(detector: torch.nn.Module, size: int, seed: int = 0) -> None:
    """A few train-mode passes so BatchNorm running stats differ from their init values."""
    g = torch.Generator().manual_seed(seed)
    detector.train()
    with torch.no_grad():
        for _ in range(3):
            detector(torch.rand(4, 3, size, size, generator=g))
    detector.eval()


def _spread_logits(detector: torch.nn.Module, size: int, gain: float = 400.0, seed: int = 1) -> None:
    """Random-init logits barely vary (~1e-3); scale the head so that images and tiles get
    clearly different scores (a few units apart) centred near 0, hence a mix of verdicts."""
    head = detector.head[-1]
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        head.weight.mul_(gain)
        head.bias.zero_()
        head.bias.sub_(detector(torch.rand(8, 3, size, size, generator=g)).mean())


@pytest.fixture
def tiny_model(tmp_path) -> CalibratedModel:
    """An in-memory random-weight npr model (also saved, see `tiny_model_path`)."""
    torch.manual_seed(0)
    det = tiny_npr()
    _warm_batchnorm(det, TINY_CROP)
    _spread_logits(det, TINY_CROP)
    info = ModelInfo(
        detector="npr", name="tiny-npr", version="0.0.1",
        calibration=TINY_CALIBRATION.model_copy(), decision=TINY_DECISION.model_copy(),
    )
    return CalibratedModel(det, info)


@pytest.fixture
def tiny_model_path(tmp_path, tiny_model) -> Path:
    """The .json path of a random-weight `npr` model (crop 64, widths 8/8/16/16)."""
    path = tiny_model.save(tmp_path / "models" / "tiny-npr")
    assert path.suffix == ".json" and path.with_suffix(".safetensors").exists()
    return path


def _encode(rgb: np.ndarray, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """A folder with the `GOOD_IMAGES` (JPEG and PNG, smaller/equal/larger than the 64 px crop)
    and the `BAD_FILES` (empty .png, text named .jpg, truncated .jpg)."""
    root = tmp_path / "images"
    root.mkdir()
    for i, (name, (h, w)) in enumerate(GOOD_IMAGES.items()):
        fmt = "JPEG" if name.endswith(".jpg") else "PNG"
        kw = {"quality": 90} if fmt == "JPEG" else {}
        (root / name).write_bytes(_encode(noise_rgb(h, w, seed=i + 1), fmt, **kw))
    (root / "empty.png").write_bytes(b"")
    (root / "notes.jpg").write_bytes(b"this is not an image, just some text\n")
    data = _encode(noise_rgb(64, 64, seed=99), "JPEG", quality=90)
    (root / "trunc.jpg").write_bytes(data[: len(data) // 2])
    return root


@pytest.fixture
def image_specs() -> dict:
    """What `image_folder` holds: {"good": {name: (h, w)}, "bad": {name: error code}}."""
    return {"good": dict(GOOD_IMAGES), "bad": dict(BAD_FILES)}

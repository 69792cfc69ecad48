"""Small picture helpers for trace views: scale an array to 0..1, colour it, encode as PNG.

Only numpy and Pillow: the colour map is a piecewise-linear ramp through a few anchor colours
(black -> purple -> orange -> pale yellow, close to "inferno"), so no plotting library is needed.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

# Anchor colours of the ramp, evenly spaced over 0..1.
_RAMP = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float32)


def normalise(values: np.ndarray, low_pct: float = 1.0, high_pct: float = 99.0) -> np.ndarray:
    """Map values to 0..1 between two percentiles (robust to a few extreme pixels)."""
    values = np.asarray(values, dtype=np.float32)
    low, high = np.percentile(values, [low_pct, high_pct])
    return np.clip((values - low) / max(float(high - low), 1e-12), 0.0, 1.0)


def colourise(unit: np.ndarray) -> np.ndarray:
    """A 2-D array in 0..1 -> HxWx3 uint8 through the colour ramp."""
    position = np.clip(unit, 0.0, 1.0) * (len(_RAMP) - 1)
    index = np.minimum(position.astype(np.int64), len(_RAMP) - 2)
    frac = (position - index)[..., None]
    return (_RAMP[index] * (1 - frac) + _RAMP[index + 1] * frac).round().astype(np.uint8)


def png_base64(image: np.ndarray) -> str:
    """HxW or HxWx3 uint8 -> base64 of a PNG file."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, "PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode("ascii")

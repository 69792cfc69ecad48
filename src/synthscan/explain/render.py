"""Maps to pictures: a 0..1 map as a heatmap over its image, encoded as PNG.

The colormap is a piecewise-linear ramp through a few anchor colours (black-purple-red-yellow,
like matplotlib's "inferno") computed with numpy. The overlay blends each pixel towards its
colour in proportion to the map, so pixels without attribution show the image unchanged.
A PNG is embedded as base64 or written to a folder; either way the result is a `MapImage`.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
from PIL import Image

from synthscan.explain.schema import MapImage

# (position in 0..1, RGB) anchors of the heat ramp.
HEAT_ANCHORS = (
    (0.00, (0, 0, 4)),
    (0.25, (87, 16, 110)),
    (0.50, (188, 55, 84)),
    (0.75, (249, 142, 9)),
    (1.00, (252, 255, 164)),
)
MAX_SIDE = 512  # rendered pictures are shrunk to this (as trace views and report thumbnails are)
OVERLAY_OPACITY = 0.7  # the overlay's weight where the map is 1


def _heat_table() -> np.ndarray:
    """(256, 3) uint8: the ramp sampled at 256 levels, so colouring is one table look-up."""
    positions = [p for p, _ in HEAT_ANCHORS]
    levels = np.linspace(0.0, 1.0, 256)
    channels = [np.interp(levels, positions, [c[k] for _, c in HEAT_ANCHORS]) for k in range(3)]
    return np.stack(channels, axis=-1).round().astype(np.uint8)


HEAT_TABLE = _heat_table()


def _levels(values: np.ndarray) -> np.ndarray:
    return (np.clip(np.nan_to_num(values), 0.0, 1.0) * 255).round().astype(np.uint8)


def colormap(values: np.ndarray) -> np.ndarray:
    """(H, W) values in 0..1 -> (H, W, 3) uint8 heat colours."""
    return HEAT_TABLE[_levels(values)]


def overlay(values: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """The image with the heat colours blended in where the map is high."""
    levels = _levels(values)
    alpha = (levels.astype(np.float32) * (OVERLAY_OPACITY / 255))[..., None]
    blended = rgb * (1.0 - alpha) + HEAT_TABLE[levels] * alpha
    return blended.round().astype(np.uint8)


def _shrunk(picture: np.ndarray) -> Image.Image:
    image = Image.fromarray(picture)
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.BILINEAR)
    return image


def png_bytes(picture: np.ndarray) -> tuple[bytes, tuple[int, int]]:
    """(PNG bytes, (width, height)) of an RGB picture, shrunk to `MAX_SIDE`."""
    image = _shrunk(picture)
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=1)  # fast; these are previews, not archives
    return buf.getvalue(), image.size


def png_base64(picture: np.ndarray) -> str:
    """Base64 of the PNG of an RGB (or grey) picture, shrunk to `MAX_SIDE`."""
    return base64.b64encode(png_bytes(picture)[0]).decode("ascii")


def save_png(data: bytes, out_dir: str | Path, name: str) -> str:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.png"
    path.write_bytes(data)
    return str(path)


def map_image(
    picture: np.ndarray, *, kind: str, title: str, note: str = "", mode: str = "base64",
    out_dir: str | Path | None = None, name: str | None = None,
) -> MapImage:
    """A `MapImage` for an RGB picture: embedded (mode "base64") or written as
    `<out_dir>/<name>.png` (mode "dir")."""
    data, (width, height) = png_bytes(picture)
    image = MapImage(kind=kind, title=title, width=width, height=height, note=note)
    if mode == "base64":
        image.png_base64 = base64.b64encode(data).decode("ascii")
    elif mode == "dir":
        if out_dir is None:
            raise ValueError("mode 'dir' needs out_dir")
        image.path = save_png(data, out_dir, name or kind)
    else:
        raise ValueError(f"map mode must be 'base64' or 'dir', not {mode!r}")
    return image


def render_heatmap(values: np.ndarray, rgb: np.ndarray, **kwargs) -> MapImage:
    """A 0..1 map overlaid on its image (same height and width) as a `MapImage`."""
    h, w = values.shape
    if max(h, w) > MAX_SIDE:  # blend at the size the picture is shown, not at full resolution
        size = (max(1, round(w * MAX_SIDE / max(h, w))), max(1, round(h * MAX_SIDE / max(h, w))))
        values = np.asarray(Image.fromarray(values.astype(np.float32)).resize(size, Image.BILINEAR))
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR))
    return map_image(overlay(values, rgb), **kwargs)

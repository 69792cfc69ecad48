"""Small picture helpers for trace views: scale an array to 0..1 and draw simple charts.

Only numpy and Pillow, so no plotting library is needed. Colouring and PNG encoding live in
`synthscan.explain.render` and are shared with the attribution heatmaps.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def block_means(values: np.ndarray, factor: int) -> np.ndarray:
    """Means of factor x factor pixel blocks of a 2-D map whose sides are multiples of `factor`."""
    h, w = values.shape
    return values.reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def percentile_stretch(values: np.ndarray, low_pct: float = 1.0, high_pct: float = 99.0) -> np.ndarray:
    """Map values to 0..1 between two percentiles (robust to a few extreme pixels)."""
    values = np.asarray(values, dtype=np.float32)
    low, high = np.percentile(values, [low_pct, high_pct])
    return np.clip((values - low) / max(float(high - low), 1e-12), 0.0, 1.0)


# Distinct line colours for charts (colour-blind-friendly "Okabe-Ito" palette).
PALETTE = [(0, 114, 178), (230, 159, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233), (213, 94, 0), (0, 0, 0)]


def line_chart(series: dict[str, np.ndarray], title: str, x_label: str, size: tuple[int, int] = (512, 300)) -> np.ndarray:
    """Lines (one per named series, same x grid) with a legend, as an RGB uint8 picture."""
    from PIL import ImageDraw

    width, height = size
    left, right, top, bottom = 40, 130, 24, 30
    picture = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(picture)
    values = np.concatenate([np.asarray(v, dtype=float) for v in series.values()])
    low, high = float(values.min()), float(values.max())
    span = max(high - low, 1e-6)
    draw.rectangle((left, top, width - right, height - bottom), outline=(120, 120, 120))
    draw.text((left, 4), title, fill="black")
    draw.text((left, height - bottom + 6), x_label, fill="black")
    draw.text((2, top), f"{high:.1f}", fill="black")
    draw.text((2, height - bottom - 12), f"{low:.1f}", fill="black")
    for i, (name, line) in enumerate(series.items()):
        line = np.asarray(line, dtype=float)
        xs = left + np.arange(len(line)) / max(len(line) - 1, 1) * (width - right - left)
        ys = height - bottom - (line - low) / span * (height - bottom - top)
        colour = PALETTE[i % len(PALETTE)]
        draw.line(list(zip(xs.tolist(), ys.tolist())), fill=colour, width=2)
        draw.text((width - right + 8, top + 14 * i), name[:20], fill=colour)
    return np.asarray(picture)


def bar_chart(values: dict[str, float], title: str, bar_height: int = 16, width: int = 520) -> np.ndarray:
    """Horizontal bars with their labels and values, as an RGB uint8 picture."""
    from PIL import ImageDraw

    label_width, top = 190, 24
    picture = Image.new("RGB", (width, top + bar_height * len(values) + 8), "white")
    draw = ImageDraw.Draw(picture)
    draw.text((4, 4), title, fill="black")
    high = max([abs(v) for v in values.values()] + [1e-6])
    for i, (name, value) in enumerate(values.items()):
        y = top + i * bar_height
        length = abs(value) / high * (width - label_width - 60)
        draw.text((4, y + 2), name[:30], fill="black")
        draw.rectangle((label_width, y + 2, label_width + length, y + bar_height - 2), fill=PALETTE[0])
        draw.text((label_width + length + 4, y + 2), f"{value:.3f}", fill="black")
    return np.asarray(picture)

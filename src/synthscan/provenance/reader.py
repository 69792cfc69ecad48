"""Read every provenance signal of one file. Each signal is read on its own: an exception in one
becomes that signal's `invalid` status, and nothing here raises for a bad file."""

from __future__ import annotations

import io
import time
import warnings
from typing import Any

import numpy as np
from PIL import Image

from synthscan.io import ImageLoadError, load_image
from synthscan.io.loading import sniff_format
from synthscan.provenance import c2pa_signal, generators, hints, metadata, watermark
from synthscan.provenance.model import SIGNAL_NAMES, Provenance, Signal


def _guarded(name: str, read, *args, **kwargs) -> Signal:
    try:
        return read(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - one broken signal must not lose the others (or the scan)
        return Signal.invalid(name, f"cannot be read: {type(exc).__name__}: {exc}")


def read_provenance(
    data: bytes,
    rgb: np.ndarray | None = None,
    *,
    show_prompts: bool = False,
    trust_anchors: str | None = None,
) -> Provenance:
    """Every signal of a file's bytes. `rgb`: its decoded pixels (`LoadedImage.rgb`) for the
    watermark; without them the file is decoded here. `trust_anchors`: a PEM file of C2PA
    trust anchors; `show_prompts`: keep prompt text from generation parameters."""
    start = time.perf_counter()
    signals = {"c2pa": _guarded("c2pa", c2pa_signal.read_c2pa, data, sniff_format(data[:512]), trust_anchors)}
    image, problem = _open(data)
    if image is None:
        for name in ("metadata", "generator", "hints"):
            signals[name] = Signal.invalid(name, problem)
        signals["watermark"] = _guarded("watermark", watermark.watermark_signal, rgb)
        return Provenance(signals=_ordered(signals), seconds=time.perf_counter() - start)
    with image:
        try:
            fields, problems = metadata.read_fields(image, data)
        except Exception as exc:  # noqa: BLE001
            fields, problems = {}, [f"metadata cannot be read: {type(exc).__name__}: {exc}"]
        texts = _texts(image, fields)
        signals["metadata"] = _guarded("metadata", metadata.metadata_signal, fields, problems, list(texts.values()))
        signals["generator"] = _guarded("generator", generators.generator_signal, texts, show_prompts)
        if rgb is None:
            rgb = _pixels(data)
        signals["watermark"] = _guarded("watermark", watermark.watermark_signal, rgb)
        found = hints.hints(image, fields)
    signals["hints"] = hints.hints_signal(found)
    return Provenance(signals=_ordered(signals), hints=found, seconds=time.perf_counter() - start)


def _open(data: bytes) -> tuple[Image.Image | None, str]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Image.open(io.BytesIO(data)), ""
    except Exception as exc:  # noqa: BLE001 - Pillow raises anything on broken headers
        return None, f"the file's header cannot be parsed: {type(exc).__name__}: {exc}"


def _texts(image: Image.Image, fields: dict[str, Any]) -> dict[str, str]:
    """PNG/WebP text chunks by keyword, plus the comment fields generators write into."""
    texts = {k: v for k, v in image.info.items() if isinstance(k, str) and isinstance(v, str) and k != "xmp"}
    for key in ("user_comment", "xmp_user_comment", "comment", "xmp_description", "description"):
        if fields.get(key):
            texts.setdefault(key, fields[key])
    return texts


def _pixels(data: bytes) -> np.ndarray | None:
    """Decoded with the scanner's loader, so its pixel limits apply."""
    try:
        return load_image(data).rgb
    except ImageLoadError:  # the watermark then reports "pixels not decoded"
        return None


def _ordered(signals: dict[str, Signal]) -> dict[str, Signal]:
    return {name: signals[name] for name in SIGNAL_NAMES if name in signals}

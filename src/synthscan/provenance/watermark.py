"""Invisible watermarks, decoded from the pixels.

Built in: the DWT-DCT watermark that Stable Diffusion's reference scripts embed with the
`invisible-watermark` package: the 136-bit bytes "StableDiffusionV1" (SD 1.x/2.x scripts) and the
48-bit message of Stability's generative-models repository (SDXL). Other decoders plug in with
`register_decoder`: a function from an RGB array to a `WatermarkMatch` or None.

The DWT-DCT watermark repeats its bits block by block across the image, row-major. Decoding a
strip of whole rows from the top keeps every block at its index, so a strip of 256x256
pixels' worth (the decoder's own minimum; about 7 votes per bit of the longer message) is decoded
instead of the whole image: ~10 ms instead of ~100 ms at 1024 px. (A 32k-pixel strip halves the
time but missed a watermark in noisy test pictures.) Agreement is the share of the expected bits decoded: a fresh watermark
gives 0.85-1.0, unmarked pixels about 0.5. A watermark is reported when unmarked pixels would
agree this well by chance with probability below `MAX_CHANCE` (binomial tail, fair coin per bit):
at least 45 of 48 bits (SDXL) or 103 of 136 (SD 1.x/2.x).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from synthscan.provenance.model import Signal

NAME = "watermark"
MAX_CHANCE = 1e-9  # small enough for a million files to yield no false mark on average
_MIN_PIXELS = 256 * 256  # imwatermark refuses smaller images


@dataclass
class WatermarkMatch:
    scheme: str  # e.g. "stable-diffusion-v1 (dwtDct)"
    agreement: float  # share of the expected bits found
    tool: str
    chance: float = 0.0  # probability that unmarked pixels agree as well


# The expected messages, as the reference scripts set them.
SD_V1_BITS = np.unpackbits(np.frombuffer(b"StableDiffusionV1", dtype=np.uint8))
SDXL_BITS = np.array([int(b) for b in f"{0b101100111110110010010000011110111011000110011110:048b}"], dtype=np.uint8)
_SCHEMES = (("stable-diffusion-v1 (dwtDct)", "Stable Diffusion reference scripts", SD_V1_BITS),
            ("sdxl (dwtDct)", "Stability AI generative-models (SDXL)", SDXL_BITS))


def top_strip(rgb: np.ndarray) -> np.ndarray:
    """The fewest whole top rows (a multiple of 8, the DWT-DCT block in pixels) holding at least
    `_MIN_PIXELS` pixels, as BGR for OpenCV."""
    height, width = rgb.shape[:2]
    rows = min(height, -(-_MIN_PIXELS // width // 8) * 8 + 8)
    return np.ascontiguousarray(rgb[:rows, :, ::-1])


def stable_diffusion(rgb: np.ndarray) -> WatermarkMatch | None:
    from imwatermark import WatermarkDecoder
    from scipy.stats import binom

    strip = top_strip(rgb)
    best = None
    for scheme, tool, expected in _SCHEMES:
        bits = np.asarray(WatermarkDecoder("bits", len(expected)).decode(strip, "dwtDct"), dtype=np.uint8)
        agreeing = int((bits == expected).sum())
        chance = float(binom.sf(agreeing - 1, len(expected), 0.5))
        if chance < MAX_CHANCE and (best is None or chance < best.chance):
            best = WatermarkMatch(scheme=scheme, agreement=agreeing / len(expected), tool=tool, chance=chance)
    return best


DECODERS: dict[str, Callable[[np.ndarray], WatermarkMatch | None]] = {"stable-diffusion": stable_diffusion}
# Packages a decoder needs, so a missing one is reported by name instead of failing.
REQUIRES = {"stable-diffusion": "imwatermark"}


def register_decoder(name: str, decode: Callable[[np.ndarray], WatermarkMatch | None], requires: str | None = None) -> None:
    """Add a decoder: `decode(rgb)` returns a match or None; `requires` names a module it imports."""
    DECODERS[name] = decode
    if requires:
        REQUIRES[name] = requires


def watermark_signal(rgb: np.ndarray | None) -> Signal:
    if rgb is None:
        return Signal.unchecked(NAME, "pixels not decoded")
    if rgb.shape[0] * rgb.shape[1] < _MIN_PIXELS:
        return Signal.unchecked(NAME, f"{rgb.shape[1]}x{rgb.shape[0]} is too small to decode a watermark (needs 256x256 pixels)")
    import importlib.util

    missing, problems = [], []
    for name, decode in DECODERS.items():
        module = REQUIRES.get(name)
        if module and importlib.util.find_spec(module) is None:
            missing.append(f"{name} needs {module}")
            continue
        try:
            match = decode(rgb)
        except Exception as exc:  # noqa: BLE001 - a decoder's failure is this signal's error only
            problems.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        if match:
            return Signal(name=NAME, status="present", claims="generated",
                          reason=f"{match.scheme} watermark decoded ({match.agreement:.0%} of bits), as written by {match.tool}",
                          details={"scheme": match.scheme, "agreement": round(match.agreement, 3), "tool": match.tool,
                                   "chance": match.chance, "decoder": name})
    if problems:
        return Signal.invalid(NAME, f"watermark decoding failed: {problems[0]}", problems=problems)
    if missing and len(missing) == len(DECODERS):
        return Signal.unchecked(NAME, f"no watermark decoder available ({'; '.join(missing)}): pip install 'synthscan[provenance]'")
    checked = [n for n in DECODERS if not any(m.startswith(n) for m in missing)]
    return Signal.absent(NAME, f"no known watermark decoded ({', '.join(checked)})")

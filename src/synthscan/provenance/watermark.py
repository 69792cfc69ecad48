"""Invisible watermarks, decoded from the pixels.

Built in: the DWT-DCT watermark that Stable Diffusion's reference scripts embed with the
`invisible-watermark` package: the 136-bit bytes "StableDiffusionV1" (SD 1.x/2.x scripts) and the
48-bit message of Stability's generative-models repository (SDXL). Other decoders plug in with
`register_decoder`: a function from an RGB array to a `WatermarkMatch` or None.

The DWT-DCT watermark ("dwtDct" in the package) hides each bit in one 4x4 block of the
U channel's Haar approximation band: the block's largest non-DC value, taken modulo 36, is in
the upper or lower half. Bits repeat block by block, row-major, so a strip of whole rows from the
top keeps every block at its index. `dwtdct_votes` computes every block's vote at once with numpy
(the package's decoder loops over blocks in Python: ~10 ms per message for a 256x256 strip;
this takes ~1-2 ms for both), and
the SD 1.x and SDXL messages are read from the same votes; a test checks that the bits equal the
package's `WatermarkDecoder`.

Agreement is the share of the expected bits decoded: a fresh watermark gives 0.85-1.0, unmarked
pixels about 0.5. A watermark is reported when unmarked pixels would agree this well by chance
with probability below `MAX_CHANCE` (binomial tail, fair coin per bit): at least 45 of 48 bits
(SDXL) or 103 of 136 (SD 1.x/2.x). JPEG chroma subsampling (4:2:0, most JPEG encoders' default)
and resizing erase it, so its absence proves nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from synthscan.provenance.model import Signal

NAME = "watermark"
MAX_CHANCE = 1e-9  # small enough for a million files to yield no false mark on average
_MIN_PIXELS = 256 * 256  # imwatermark refuses smaller images
STRIP_PIXELS = 256 * 256  # pixels decoded (whole top rows): ~7 votes per bit of the longer message
SCALE, BLOCK = 36, 4  # the package's defaults for the U channel, which the reference scripts use


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


def top_strip(rgb: np.ndarray, pixels: int = STRIP_PIXELS) -> np.ndarray:
    """The top rows (a multiple of 8, one DWT-DCT block in pixels) holding at least `pixels`
    pixels, or the whole image."""
    height, width = rgb.shape[:2]
    return rgb[: min(height, -(-pixels // width // 8) * 8)]


def dwtdct_votes(rgb: np.ndarray) -> np.ndarray:
    """Each 4x4 block's bit (0/1), row-major: what imwatermark's `EmbedMaxDct.decode_frame`
    computes per block for the U channel (of OpenCV's YUV), vectorised."""
    import cv2
    import pywt

    rows, cols = rgb.shape[0] // 4 * 4, rgb.shape[1] // 4 * 4
    u = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV)[:rows, :cols, 1]
    band, _ = pywt.dwt2(u, "haar")
    r, c = band.shape[0] // BLOCK, band.shape[1] // BLOCK
    blocks = band[: r * BLOCK, : c * BLOCK].reshape(r, BLOCK, c, BLOCK).swapaxes(1, 2).reshape(r * c, BLOCK * BLOCK)
    peak = np.argmax(np.abs(blocks[:, 1:]), axis=1) + 1
    return (np.abs(blocks[np.arange(len(blocks)), peak]) % SCALE > 0.5 * SCALE).astype(np.uint8)


def message_bits(votes: np.ndarray, length: int) -> np.ndarray:
    """Bit k is the majority of the votes of blocks k, k + length, ... (the package's rule)."""
    padded = np.full(-(-len(votes) // length) * length, np.nan)
    padded[: len(votes)] = votes
    return (np.nanmean(padded.reshape(-1, length), axis=0) * 255 > 127).astype(np.uint8)


def chance_of_agreement(agreeing: int, bits: int) -> float:
    """P(at least `agreeing` of `bits` fair coin flips match): the binomial tail."""
    return sum(math.comb(bits, k) for k in range(agreeing, bits + 1)) / 2**bits


def stable_diffusion(rgb: np.ndarray) -> WatermarkMatch | None:
    votes = dwtdct_votes(top_strip(rgb))
    best = None
    for scheme, tool, expected in _SCHEMES:
        agreeing = int((message_bits(votes, len(expected)) == expected).sum())
        chance = chance_of_agreement(agreeing, len(expected))
        if chance < MAX_CHANCE and (best is None or chance < best.chance):
            best = WatermarkMatch(scheme=scheme, agreement=agreeing / len(expected), tool=tool, chance=chance)
    return best


DECODERS: dict[str, Callable[[np.ndarray], WatermarkMatch | None]] = {"stable-diffusion": stable_diffusion}
# Packages a decoder needs, so a missing one is reported by name instead of failing.
REQUIRES = {"stable-diffusion": "imwatermark"}  # its OpenCV and PyWavelets, which the votes use


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

"""File-history hints: weak evidence, each with a stated weight (> 0 towards generated, < 0
towards a camera). They only ever move a borderline pixel verdict (see `fusion`), because each
has innocent explanations: any editor re-saves with standard tables, some cameras shoot square
crops, EXIF is copied between files in one command.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from synthscan.provenance.model import Hint, Signal

NAME = "hints"
# libjpeg's (IJG) example tables, in natural order, which Pillow, browsers, OpenCV and most
# software (and so most generator front-ends) scale by quality; cameras mostly use their own.
IJG_LUMA = (16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
            14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
            49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99)
IJG_CHROMA = (17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
              47, 66, 99, 99, 99, 99, 99, 99) + (99,) * 32
# Sizes that generators default to (SD 1.x/2.x, SDXL buckets, DALL-E 3, Midjourney squares).
GENERATOR_SIZES = {(512, 512), (768, 768), (1024, 1024), (2048, 2048), (1152, 896), (896, 1152), (1216, 832),
                   (832, 1216), (1344, 768), (768, 1344), (1536, 640), (640, 1536), (1792, 1024), (1024, 1792),
                   (512, 768), (768, 512), (1536, 1024), (1024, 1536)}
HINT_MOVE = 0.5  # total weight that moves an uncertain pixel verdict (see fusion); below it, no claim
WEIGHTS = {
    "generator-size": 0.3,     # an exact default size of a generator
    "multiple-of-64": 0.1,     # both sides multiples of 64 (latent-diffusion sizes), not a default
    "ijg-tables": 0.1,         # JPEG saved by common software at IJG quality q, not by a camera
    "camera-tables": -0.2,     # JPEG tables that are not IJG's, as cameras and some editors write
    "camera-without-exposure": 0.3,  # names a camera but has none of the exposure data cameras write
    "camera-exif": -0.3,       # camera make/model with exposure data (copyable, so weak)
    "modified-after-capture": 0.0,   # informational: DateTime later than DateTimeOriginal
}


def _ijg_scaled(table: tuple[int, ...], quality: int) -> tuple[int, ...]:
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return tuple(min(255, max(1, (v * scale + 50) // 100)) for v in table)


# Scaled luma table -> (quality, scaled chroma table), for the lowest quality giving each luma table.
IJG_TABLES: dict[tuple[int, ...], tuple[int, tuple[int, ...]]] = {}
for _q in range(100, 0, -1):
    IJG_TABLES[_ijg_scaled(IJG_LUMA, _q)] = (_q, _ijg_scaled(IJG_CHROMA, _q))


def ijg_quality(tables: dict[int, Any]) -> int | None:
    """The IJG quality (1..100) whose scaled tables these are, or None."""
    if not tables or 0 not in tables:
        return None
    found = IJG_TABLES.get(tuple(tables[0]))
    if found is None:
        return None
    quality, chroma = found
    return quality if 1 not in tables or tuple(tables[1]) == chroma else None


def hints(image: Image.Image, fields: dict[str, Any]) -> list[Hint]:
    found = []

    def add(name: str, reason: str) -> None:
        found.append(Hint(name=name, weight=WEIGHTS[name], reason=reason))

    width, height = image.size
    if (width, height) in GENERATOR_SIZES:
        add("generator-size", f"{width}x{height} is a default size of common generators")
    elif width % 64 == 0 and height % 64 == 0 and min(width, height) >= 256:
        add("multiple-of-64", f"{width}x{height}: both sides are multiples of 64, as latent-diffusion sizes are")
    tables = getattr(image, "quantization", None)
    if image.format in ("JPEG", "MPO") and tables:
        quality = ijg_quality(tables)
        if quality is not None:
            add("ijg-tables", f"JPEG tables are libjpeg's at quality {quality} (common software, not a camera's own)")
        else:
            add("camera-tables", "JPEG tables are not libjpeg's standard ones (cameras and some editors use their own)")
    camera = " ".join(v for v in (fields.get("make"), fields.get("model")) if v)
    exposure = [k for k in ("exposure_time", "f_number", "iso", "captured") if fields.get(k)]
    if camera and not exposure:
        add("camera-without-exposure", f"names the camera {camera} but has no exposure time, aperture, ISO or capture date")
    elif camera:
        add("camera-exif", f"camera {camera} with {', '.join(exposure)}")
    captured, modified = fields.get("captured"), fields.get("modified")
    if isinstance(captured, str) and isinstance(modified, str) and modified > captured:
        add("modified-after-capture", f"modified {modified}, captured {captured}")
    return found


def hints_signal(found: list[Hint]) -> Signal:
    if not found:
        return Signal.absent(NAME, "no file-history hint")
    total = sum(h.weight for h in found)
    claims = "generated" if total >= HINT_MOVE else "capture" if total <= -HINT_MOVE else "none"
    return Signal(name=NAME, status="present", claims=claims, details={"total_weight": round(total, 2)},
                  reason=f"{len(found)} weak hint(s), total weight {total:+.1f}: " + "; ".join(h.name for h in found))

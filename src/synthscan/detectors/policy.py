"""How an image of any size reaches a detector: the one setting tiling and detectors share.

Kept apart from `base.py` so that `tiling.py` (which `base.py` uses to score images) depends on
nothing but this.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class InputPolicy(BaseModel):
    """How an image of any size becomes the detector's input.

    mode="tiles": trace detectors see native pixels only. The image is covered by
    crop_size x crop_size tiles (see `synthscan.detectors.tiling`), never rescaled.
    mode="resize": semantic detectors (CLIP, ViT) see the whole image resized to crop_size.
    Images smaller than the crop are padded (mirrored) or upscaled (bicubic), flagged in results.
    jpeg_quality: re-encode every input as JPEG at this quality first (None: never), meant to make
    a re-posted copy look like its original. Tried on the default model it lost 0.054 AP and did
    not raise web AP (docs/generalise-clip.md), so no bundled model uses it.
    """

    model_config = ConfigDict(frozen=True)

    mode: Literal["tiles", "resize"] = "tiles"
    crop_size: int = 256
    max_tiles: int = 16
    small_image: Literal["pad", "upscale"] = "pad"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    jpeg_quality: int | None = Field(default=None, ge=1, le=100)

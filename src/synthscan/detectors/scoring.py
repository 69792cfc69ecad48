"""Scoring without torch: calibration, the saved model record, and `Scorer`, the one scoring path.

`Scorer.score_many` tiles images (`tiling.make_tiles`), batches the tiles of several images,
asks the subclass for their raw logits (`tile_logits`), averages them per image, calibrates the
mean (`Calibration.apply`) and applies the decision. `CalibratedModel` (detectors/base.py)
supplies the logits from a torch detector; `OnnxModel` (runtime/onnx_model.py) from
onnxruntime, so a worker that scores ONNX exports never imports torch. A model may name a second
head for images last saved as JPEG below a quality (`RecompressedRoute`); `score_many` sends
those images there.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field
from scipy.special import expit

from synthscan.detectors.jpeg_history import estimate_jpeg_quality
from synthscan.detectors.policy import InputPolicy
from synthscan.detectors.tiling import make_tiles
from synthscan.result import Decision, Verdict

FORMAT_VERSION = 1
DEFAULT_MODEL = "synthscan-default"
Box = tuple[int, int, int, int]


class Calibration(BaseModel):
    """How a raw logit becomes P(fake). Identity until fitted.

    platt: p = sigmoid(scale * logit + bias); temperature: the same with bias 0 (scale = 1/T);
    isotonic: p = linear interpolation of `knots_p` at `knots_logit` (increasing raw logits),
    constant beyond the ends. Model files without `method` are Platt (format 1 as before).
    See `synthscan.evaluate.calibration` for the fits.
    """

    method: Literal["platt", "temperature", "isotonic"] = "platt"
    scale: float = 1.0
    bias: float = 0.0
    knots_logit: list[float] = Field(default_factory=list)
    knots_p: list[float] = Field(default_factory=list)
    fitted_on: str | None = None

    def apply(self, logits: Any) -> np.ndarray:
        """Calibrated P(fake) of raw logits (any shape), in float64: the one place this is computed."""
        x = np.asarray(logits, dtype=np.float64)
        if self.method == "isotonic":
            return np.interp(x, self.knots_logit, self.knots_p)
        return expit(self.scale * x + self.bias)


class RecompressedRoute(BaseModel):
    """Images last JPEG-saved below `below_quality` (estimated from their pixels,
    `synthscan.detectors.jpeg_history`) are scored by `model`, a head trained on re-compressed
    copies: JPEG re-compression moves a fake's score towards "real" far more than a real photo's,
    so the original-quality head calls most re-posted fakes real."""

    model: str  # the file stem of a model saved next to this one (same folder)
    below_quality: int = 93


def without_route_heads(json_paths: Sequence[Path]) -> list[Path]:
    """Of the model JSONs in one folder, those that are not another's head for re-compressed
    images (`RecompressedRoute`): a routed model is saved and exported with its head beside it,
    and the folder's model is the router."""
    heads = {route["model"] for p in json_paths if (route := json.loads(p.read_text()).get("recompressed"))}
    return [p for p in json_paths if p.stem not in heads]


class ModelInfo(BaseModel):
    """What is saved next to the weights (the `.json` half of a model)."""

    format_version: int = FORMAT_VERSION
    detector: str
    name: str
    version: str = "0.0.0"
    config: dict[str, Any] = Field(default_factory=dict)
    calibration: Calibration = Field(default_factory=Calibration)
    decision: Decision = Field(default_factory=Decision)
    training: dict[str, Any] = Field(default_factory=dict)
    recompressed: RecompressedRoute | None = None
    purpose: str = ""  # what the model is for (and not for), in a line; `synthscan models` shows it


@dataclass(frozen=True)
class ImageScore:
    """A model's score of one image: every consumer reads its verdict from here."""

    p_fake: float  # calibrated, of the mean tile logit
    verdict: Verdict
    threshold: float
    boxes: list[Box]  # the tiles scored, in image pixels
    tile_p_fake: list[float]  # calibrated P(fake) per tile
    raw_logit: float | None = None  # mean raw tile logit (what calibration is fitted on); None if unknown
    padded: bool = False
    upscaled: bool = False
    jpeg_quality: int | None = None  # estimated quality of the last JPEG save, when the model routes by it
    scored_by: str | None = None  # the routed-to model's name, when not the model itself


class Scorer:
    """A model that scores images: `info` (calibration, decision, metadata), `input_policy`, and
    `tile_logits`. Subclasses: `CalibratedModel` (torch), `OnnxModel` (onnxruntime)."""

    info: ModelInfo
    recompressed_scorer: "Scorer | None" = None  # see `RecompressedRoute`; loaded with the model

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def version(self) -> str:
        return self.info.version

    @property
    def input_policy(self) -> InputPolicy:
        raise NotImplementedError

    def tile_logits(self, crops: np.ndarray) -> np.ndarray:
        """Raw logits (N,) of a batch of tiles (N, H, W, 3) uint8."""
        raise NotImplementedError

    def probability(self, raw_logits: Any) -> np.ndarray:
        """Calibrated P(fake) of raw logits."""
        return self.info.calibration.apply(raw_logits)

    def score(self, rgb: np.ndarray, decision: Decision | None = None) -> ImageScore:
        """Score one (H, W, 3) uint8 image (see `score_many`)."""
        return self.score_many([rgb], decision=decision)[0]

    def score_many(
        self, images: Sequence[np.ndarray], *, batch_size: int = 32, decision: Decision | None = None,
        route: bool = True,
    ) -> list[ImageScore]:
        """Score images, tiles of several images sharing batches (`synthscan.detectors.tiling`):
        the image's P(fake) is the calibrated mean of its tiles' raw logits, and its verdict is
        `decision` (default: the model's own) applied to it.

        A model with a `recompressed` route sends images last JPEG-saved below its quality to that
        head, with that head's own decision unless `decision` overrides the model's; `route=False`
        scores every image with the model's own head (what its calibration is refitted on)."""
        if route and self.recompressed_scorer is not None:
            return self._score_routed(images, batch_size, decision)
        return self._score_direct(images, batch_size, decision or self.info.decision)

    def _score_direct(self, images: Sequence[np.ndarray], batch_size: int, decision: Decision) -> list[ImageScore]:
        tiles = [make_tiles(rgb, self.input_policy) for rgb in images]
        if not tiles:
            return []
        crops = np.concatenate([t.crops for t in tiles])
        raw_all = np.concatenate([np.asarray(self.tile_logits(crops[k:k + batch_size]), dtype=np.float32).reshape(-1)
                                  for k in range(0, len(crops), batch_size)])
        scores = []
        for t, raw in zip(tiles, np.split(raw_all, np.cumsum([len(t.crops) for t in tiles])[:-1])):
            mean = float(raw.astype(np.float64).mean())
            p_fake = float(self.probability(mean))
            scores.append(ImageScore(
                p_fake=p_fake, verdict=decision.verdict(p_fake), threshold=decision.threshold, boxes=t.boxes,
                tile_p_fake=self.probability(raw).tolist(), raw_logit=mean, padded=t.padded, upscaled=t.upscaled,
            ))
        return scores

    def _score_routed(self, images: Sequence[np.ndarray], batch_size: int, decision: Decision | None) -> list[ImageScore]:
        route, head = self.info.recompressed, self.recompressed_scorer
        qualities = [estimate_jpeg_quality(rgb) for rgb in images]
        to_head = [q is not None and q < route.below_quality for q in qualities]
        overridden = decision is not None and decision != self.info.decision
        direct = iter(self._score_direct([im for im, h in zip(images, to_head) if not h], batch_size,
                                         decision or self.info.decision))
        routed = iter(head.score_many([im for im, h in zip(images, to_head) if h], batch_size=batch_size,
                                      decision=decision if overridden else None))
        return [dataclasses.replace(next(routed), jpeg_quality=q, scored_by=head.name) if h
                else dataclasses.replace(next(direct), jpeg_quality=q) for q, h in zip(qualities, to_head)]

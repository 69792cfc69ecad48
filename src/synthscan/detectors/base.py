"""The detector interface every model in the zoo implements.

A detector is a `torch.nn.Module` with:
- `Config`: a pydantic model of its hyper-parameters (saved as JSON next to the weights);
- `input_policy`: how images reach it (native-resolution tiles or a resize, crop size, and the
  normalisation it applies itself);
- `forward(x)`: a float batch (N, 3, H, W) in [0, 1] -> raw logits (N,) for "fake";
- `attribution_layers()`: named modules that Grad-CAM and activation maps should hook.

`CalibratedModel` wraps a detector with what turns its logit into a probability and a verdict
(Platt scaling, threshold, uncertain band) plus the metadata saved with trained weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from safetensors.torch import load_file, save_file

from synthscan.result import Decision

FORMAT_VERSION = 1


class InputPolicy(BaseModel):
    """How an image of any size becomes the detector's input.

    mode="tiles": trace detectors see native pixels only. The image is covered by
    crop_size x crop_size tiles (see `synthscan.detectors.tiling`), never rescaled.
    mode="resize": semantic detectors (CLIP, ViT) see the whole image resized to crop_size.
    Images smaller than the crop are padded (mirrored) or upscaled (bicubic), flagged in results.
    """

    model_config = ConfigDict(frozen=True)

    mode: Literal["tiles", "resize"] = "tiles"
    crop_size: int = 256
    max_tiles: int = 16
    small_image: Literal["pad", "upscale"] = "pad"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)


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


class Detector(torch.nn.Module):
    name: ClassVar[str]
    Config: ClassVar[type[BaseModel]]

    def __init__(self, config: BaseModel | None = None):
        super().__init__()
        self.config = config if config is not None else self.Config()

    @property
    def input_policy(self) -> InputPolicy:
        # Every detector's Config has an `input: InputPolicy` field.
        return self.config.input

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        policy = self.input_policy
        mean = torch.tensor(policy.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(policy.std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def attribution_layers(self) -> dict[str, torch.nn.Module]:
        """Layers for Grad-CAM / activation maps, the first being the default."""
        return {}

    def real_only_stages(self) -> list[str]:
        """Sub-modules the trainer fits on real photos first and then freezes, in order; each
        `self.<name>` has a `self.<name>_loss(real_batch)`. Most detectors have none."""
        return []


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


class CalibratedModel:
    """A detector plus calibration and decision rule: what `scan` runs."""

    def __init__(self, detector: Detector, info: ModelInfo):
        self.detector = detector.eval()
        self.info = info

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def version(self) -> str:
        return self.info.version

    @property
    def input_policy(self) -> InputPolicy:
        return self.detector.input_policy

    def calibrate_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Calibrated logits (sigmoid gives P(fake)), tile by tile."""
        c = self.info.calibration
        if c.method == "isotonic":
            p = np.interp(logits.numpy(), c.knots_logit, c.knots_p).clip(1e-6, 1 - 1e-6)
            return torch.from_numpy(np.log(p / (1 - p))).to(logits.dtype)
        return c.scale * logits + c.bias

    def image_p_fake(self, tile_logits: np.ndarray) -> float:
        """P(fake) of an image from its tiles' raw logits. Affine calibrations average the
        calibrated tile logits (as always); isotonic maps the mean raw logit, the quantity it
        was fitted on (`synthscan.train.trainer.score_images`)."""
        c = self.info.calibration
        if c.method == "isotonic":
            return float(np.interp(float(np.mean(tile_logits)), c.knots_logit, c.knots_p))
        z = self.calibrate_logits(torch.from_numpy(tile_logits)).numpy()
        return float(1.0 / (1.0 + np.exp(-z.mean())))

    @torch.inference_mode()
    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """Raw (uncalibrated) logits for a float batch in [0, 1]."""
        return self.detector(batch).float()

    def save(self, path: str | Path) -> Path:
        """Write `<path>.safetensors` and `<path>.json`; returns the JSON path."""
        path = Path(path)
        stem = path.with_suffix("") if path.suffix in {".json", ".safetensors"} else path
        stem.parent.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.detector.state_dict().items()}
        save_file(tensors, str(stem.with_suffix(".safetensors")))
        stem.with_suffix(".safetensors").chmod(0o644)  # safetensors writes 0600; models are shared
        self.info.config = self.detector.config.model_dump(mode="json")
        json_path = stem.with_suffix(".json")
        json_path.write_text(self.info.model_dump_json(indent=2) + "\n")
        return json_path

    @classmethod
    def load(cls, json_path: str | Path, map_location: str = "cpu") -> "CalibratedModel":
        from synthscan.detectors.registry import get_detector_class

        json_path = Path(json_path)
        info = ModelInfo.model_validate(json.loads(json_path.read_text()))
        if info.format_version > FORMAT_VERSION:
            raise ValueError(
                f"{json_path} was saved by a newer synthscan (format {info.format_version}); upgrade"
            )
        detector_cls = get_detector_class(info.detector)
        detector = detector_cls(detector_cls.Config.model_validate(info.config))
        state = load_file(str(json_path.with_suffix(".safetensors")), device=map_location)
        detector.load_state_dict(state)
        return cls(detector, info)

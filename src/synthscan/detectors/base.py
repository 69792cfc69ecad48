"""The detector interface every model in the zoo implements, and the calibrated model a scan runs.

A detector is a `torch.nn.Module` subclass of `Detector`; defining it with a `name` registers it.
It has:
- `name` and `Config`: a `DetectorConfig` (pydantic) of its hyper-parameters, saved as JSON next
  to the weights; its `input` field is the `InputPolicy` (tiles or resize, crop size, and the
  normalisation `normalise` applies);
- `forward(x)`: a float batch (N, 3, H, W) in [0, 1] -> raw logits (N,) for "fake";
- optional hooks with working defaults, so neither the trainer nor the explainer has to probe
  for methods by name: `training_loss`, `trainable_parameters`, `real_only_stages` +
  `stage_loss` (pre-training on real photos), `fits_in_one_shot` + `fit_arrays` (models fitted in
  one go rather than by SGD), `attribution_layers`, `default_attribution`, `denoiser`, and
  `small_config` (a tiny configuration for tests).

`CalibratedModel` wraps a detector with what turns its logits into a probability and a verdict
(Platt, temperature or isotonic calibration, threshold, uncertain band) plus the metadata saved
with trained weights. Its `score` / `score_many` (inherited from `scoring.Scorer`, which holds the
torch-free part) is the one scoring path: scans, the trainer's validation, recipes, tile-score
maps and benchmarks all call it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field
from safetensors.torch import load_file, save_file

from synthscan.detectors import catalog
from synthscan.detectors.policy import InputPolicy
from synthscan.detectors.scoring import FORMAT_VERSION, Calibration, ImageScore, ModelInfo, Scorer
from synthscan.detectors.tiling import to_tensor_batch

__all__ = [
    "FORMAT_VERSION", "Calibration", "CalibratedModel", "Detector", "DetectorConfig", "ImageScore",
    "InputPolicy", "ModelInfo", "Scorer",
]  # fmt: skip



class DetectorConfig(BaseModel):
    """The base of every detector's `Config`: the input policy is part of the interface."""

    input: InputPolicy = Field(default_factory=InputPolicy)


class Detector(torch.nn.Module):
    name: ClassVar[str]
    Config: ClassVar[type[DetectorConfig]] = DetectorConfig
    # Whether the trainer calls `fit_arrays` once instead of running SGD (texture-gbm).
    fits_in_one_shot: ClassVar[bool] = False
    # The attribution method `synthscan explain` uses by default for this detector.
    default_attribution: ClassVar[str] = "gradcam"
    # The smallest working `Config` values (fast on a CPU): the contract test builds every
    # registered detector with them, so a new detector is tested without editing any test.
    small_config: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs):
        """A subclass that sets its own `name` is registered: `synthscan --detector NAME` finds it."""
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            catalog.register(cls)

    def __init__(self, config: DetectorConfig | None = None):
        super().__init__()
        self.config = config if config is not None else self.Config()

    @classmethod
    def from_saved(cls, config: DetectorConfig, state: dict[str, torch.Tensor]) -> "Detector":
        """The detector a saved model describes: built from its config, then given its tensors."""
        detector = cls(config)
        detector.load_state_dict(state)
        return detector

    @property
    def input_policy(self) -> InputPolicy:
        return self.config.input

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """(x - mean) / std of the input policy; detectors whose policy sets them call it first."""
        policy = self.input_policy
        mean = torch.tensor(policy.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(policy.std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- training hooks -------------------------------------------------------------------
    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The loss of a labelled batch (y = 1 for fake); binary cross-entropy unless overridden."""
        return F.binary_cross_entropy_with_logits(self(x), y)

    def trainable_parameters(self) -> Iterable[torch.nn.Parameter]:
        """What the classifier's optimiser updates (real-only stages are excluded by overriding)."""
        return self.parameters()

    def real_only_stages(self) -> list[str]:
        """Sub-modules the trainer fits on real photos first and then freezes, in order (each is
        `self.<name>` and trained with `stage_loss(name, batch)`). Most detectors have none."""
        return []

    def stage_loss(self, stage: str, real: torch.Tensor) -> torch.Tensor:
        """The loss of real-only stage `stage` on a batch of real photos."""
        raise NotImplementedError(f"{self.name} declares stage {stage!r} but no stage_loss for it")

    def fit_arrays(self, images: Iterable[np.ndarray], labels: Sequence[int]) -> dict:
        """Fit in one go on (H, W, 3) uint8 images; only when `fits_in_one_shot`. Returns a summary."""
        raise NotImplementedError(f"{self.name} is trained by SGD, not fitted in one shot")

    # --- explanation hooks ----------------------------------------------------------------
    def attribution_layers(self) -> dict[str, torch.nn.Module]:
        """Layers for Grad-CAM / activation maps, the first being the default."""
        return {}

    def denoiser(self) -> torch.nn.Module | None:
        """A module mapping a [0, 1] grey batch (N, 1, H, W) to its denoised version, whose
        difference is the noise residual the trace views show; None: a high-pass filter is used."""
        return None


class CalibratedModel(Scorer):
    """A torch detector plus calibration and decision rule: what `scan` runs (see `Scorer`)."""

    def __init__(self, detector: Detector, info: ModelInfo):
        self.detector = detector.eval()
        self.info = info

    @classmethod
    def uncalibrated(cls, detector: Detector) -> "CalibratedModel":
        """A detector with identity calibration (training, before a calibration is fitted)."""
        return cls(detector, ModelInfo(detector=detector.name, name=detector.name))

    @property
    def input_policy(self) -> InputPolicy:
        return self.detector.input_policy

    @property
    def device(self) -> torch.device:
        """Where batches go: the detector's parameters' device; the CPU without parameters."""
        first = next(self.detector.parameters(), None)
        return first.device if first is not None else torch.device("cpu")

    @torch.inference_mode()
    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """Raw (uncalibrated) logits for a float batch in [0, 1]."""
        return self.detector(batch).float()

    def tile_logits(self, crops: np.ndarray) -> np.ndarray:
        return self.logits(to_tensor_batch(crops).to(self.device)).cpu().numpy()

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
        if self.recompressed_scorer is not None and self.info.recompressed is not None:  # it is loaded from beside this file
            self.recompressed_scorer.save(stem.parent / self.info.recompressed.model)
        return json_path

    @classmethod
    def load(cls, json_path: str | Path, map_location: str = "cpu") -> "CalibratedModel":
        json_path = Path(json_path)
        info = ModelInfo.model_validate(json.loads(json_path.read_text()))
        if info.format_version > FORMAT_VERSION:
            raise ValueError(
                f"{json_path} was saved by a newer synthscan (format {info.format_version}); upgrade"
            )
        detector_cls = catalog.get(info.detector)
        state = load_file(str(json_path.with_suffix(".safetensors")), device=map_location)
        detector = detector_cls.from_saved(detector_cls.Config.model_validate(info.config), state)
        model = cls(detector, info)
        if info.recompressed is not None:  # the head for re-compressed images lives next to this file
            model.recompressed_scorer = cls.load(json_path.with_name(f"{info.recompressed.model}.json"), map_location)
        return model

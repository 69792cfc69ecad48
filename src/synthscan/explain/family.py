"""Generator-family attribution: which kind of generator most likely made a generated image.

A multinomial logistic regression (scikit-learn) on 70 hand-made features: the residual
spectrum's azimuthal profile (64 bins, centred on its mean) and its mean level, plus five
residual statistics (log residual std, residual kurtosis, log mean NPR, 2 px parity of
neighbour differences, mean saturation). It is trained on the FAKE images of the synthbench
train split (256 track) and evaluated on its val split; the parameters are stored as JSON
(`family_model.json`: scaler, coefficients, classes, val metrics), never as a pickle.

Classes are synthbench's fake families: gan, diffusion and "other". synthbench's "other" is CRN
and IMLE (cascaded-refinement and implicit-maximum-likelihood CNN generators), NOT
autoregressive models: there are no autoregressive images to learn from, so this model has no
autoregressive class and says "other" for what it saw of those two generators.
`top` is "unknown" when the highest probability is below `UNKNOWN_CUT` (0.6).
The probabilities assume the image is generated; for a real photo they mean nothing.

The bundled model is fitted offline by `synthscan fit family` (`synthscan/fit/family.py`), which
prints the val accuracy per family and records its command in the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

import numpy as np
from pydantic import BaseModel

from synthscan.explain.schema import FamilyAttribution
from synthscan.explain.traces import ImageTraces, azimuthal_profile, channel_extremes, to_float

UNKNOWN_CUT = 0.6
MODEL_NAME = "synthscan-family-logreg"


def features(image: np.ndarray | ImageTraces) -> np.ndarray:
    """The 70 features of one RGB uint8 image (see the module docstring)."""
    traces = ImageTraces.of(image)
    rgb, g, residual = traces.rgb, traces.grey, traces.high_pass
    profile = azimuthal_profile(traces.high_pass_spectrum)
    std = residual.std() + 1e-6
    kurtosis = float(np.mean((residual / std) ** 4))
    d = np.abs(np.diff(g, axis=1))
    parity = abs(d[:, ::2].mean() - d[:, 1::2].mean()) / (d.mean() + 2 / 255) if d.shape[1] > 1 else 0.0
    high, low = channel_extremes(to_float(rgb))
    saturation = float(np.mean((high - low) / np.maximum(high, 1e-3)))
    stats = [np.log(std), np.log(kurtosis + 1e-6), np.log(traces.npr.mean() + 1e-6), parity, saturation]
    return np.concatenate([profile - profile.mean(), [profile.mean()], stats]).astype(np.float64)


class FamilyModel(BaseModel):
    """Scaler + logistic-regression parameters, with how it was trained and how well it did."""

    name: str = MODEL_NAME
    classes: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[list[float]]
    intercept: list[float]
    unknown_cut: float = UNKNOWN_CUT
    training: dict = {}

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        z = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        logits = np.asarray(self.coef) @ z + np.asarray(self.intercept)
        e = np.exp(logits - logits.max())
        return e / e.sum()

    def attribute(self, image: np.ndarray | ImageTraces) -> FamilyAttribution:
        p = self.probabilities(features(image))
        return FamilyAttribution(probabilities={c: round(float(v), 4) for c, v in zip(self.classes, p)},
                                 top=self.top(p), model=self.name)

    def top(self, p: np.ndarray) -> str:
        best = int(np.argmax(p))
        return self.classes[best] if p[best] >= self.unknown_cut else "unknown"


def feature_matrix(rgbs: Iterable[np.ndarray]) -> np.ndarray:
    return np.stack([features(rgb) for rgb in rgbs])


@lru_cache(maxsize=1)
def bundled_model() -> FamilyModel | None:
    resource = resources.files("synthscan.explain").joinpath("family_model.json")
    if not resource.is_file():
        return None
    return FamilyModel.model_validate(json.loads(resource.read_text(encoding="utf-8")))


def attribute_family(image: np.ndarray | ImageTraces) -> FamilyAttribution | None:
    """P(family | generated) from the bundled model; None when no model is bundled.

    Given the explainer's `ImageTraces` of an image no larger than the crop, its residual and
    spectrum are reused; a larger image's crop has its own (the spectrum is of the crop only)."""
    model = bundled_model()
    if model is None:
        return None
    traces = ImageTraces.of(image)
    crop = central_crop(traces.rgb, FEATURE_CROP)
    return model.attribute(traces if crop.shape == traces.rgb.shape else crop)


FEATURE_CROP = 512  # trained on 256-px images: a central crop matches them and bounds the cost


def central_crop(rgb: np.ndarray, side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    y, x = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return rgb[y : y + side, x : x + side]

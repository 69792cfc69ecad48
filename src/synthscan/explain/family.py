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

Train (prints the val accuracy per family) and write the bundled model:
    python -m synthscan.explain.family --data ../shared/synthbench/manifest.csv
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from synthscan.data.datasets import Sample
from synthscan.explain.schema import FamilyAttribution
from synthscan.explain.traces import ImageTraces, azimuthal_profile, channel_extremes, to_float

UNKNOWN_CUT = 0.6
MODEL_NAME = "synthscan-family-logreg"
TRAIN_COMMAND = "python -m synthscan.explain.family --data ../shared/synthbench/manifest.csv"


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


def train(x: np.ndarray, families: list[str], c: float = 0.5) -> FamilyModel:
    """Fit on the feature rows of fake images; their family is the class."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(scaler.transform(x), families)
    coef, intercept = clf.coef_, clf.intercept_
    if len(clf.classes_) == 2:  # scikit-learn keeps one row for two classes: make it a softmax pair
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    return FamilyModel(classes=[str(k) for k in clf.classes_], mean=scaler.mean_.tolist(),
                       scale=scaler.scale_.tolist(), coef=coef.tolist(), intercept=intercept.tolist(),
                       training={"n_train": len(families), "C": c})


def evaluate(model: FamilyModel, x: np.ndarray, families: list[str]) -> dict:
    """Accuracy per true family (top == family, so "unknown" counts as wrong) and the share left unknown."""
    tops = [model.top(model.probabilities(row)) for row in x]
    report = {}
    for family in sorted(set(families)):
        hits = [t for f, t in zip(families, tops) if f == family]
        report[family] = {"n": len(hits), "accuracy": round(float(np.mean([t == family for t in hits])), 3),
                          "unknown": round(float(np.mean([t == "unknown" for t in hits])), 3)}
    report["balanced_accuracy"] = round(float(np.mean([v["accuracy"] for v in report.values()])), 3)
    return report


def save(model: FamilyModel, path: Path) -> None:
    path.write_text(model.model_dump_json(indent=1) + "\n")


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


def _features_of(samples: list[Sample]) -> np.ndarray:
    from synthscan.io.loading import load_image

    return feature_matrix(load_image(s.path).rgb for s in samples)


def main() -> None:
    from synthscan.data.datasets import read_dataset

    parser = argparse.ArgumentParser(description="Train the generator-family model on synthbench fakes.")
    parser.add_argument("--data", required=True, help="synthbench manifest.csv")
    parser.add_argument("--track", default="256")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("family_model.json"))
    args = parser.parse_args()
    fakes = {split: [s for s in read_dataset(args.data, split=split, track=args.track) if s.label == "fake"]
             for split in ("train", "val")}
    x = {split: _features_of(samples) for split, samples in fakes.items()}
    families = {split: [s.family for s in samples] for split, samples in fakes.items()}
    model = train(x["train"], families["train"])
    model.training.update(command=TRAIN_COMMAND, data="synthbench", track=args.track,
                          train=evaluate(model, x["train"], families["train"]),
                          val=evaluate(model, x["val"], families["val"]))
    save(model, args.out)
    print(f"wrote {args.out}")
    for split in ("train", "val"):
        print(f"{split}: " + json.dumps(model.training[split]))


if __name__ == "__main__":
    main()

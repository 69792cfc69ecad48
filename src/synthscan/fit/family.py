"""`synthscan fit family`: train the generator-family model on a dataset's fakes.

Fits `synthscan.explain.family.FamilyModel` on the FAKE images of the train split, evaluates it
on the val split, and writes it as JSON (by default over the bundled `family_model.json`) with
the command that made it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synthscan.data.datasets import Sample, read_dataset
from synthscan.explain.family import FamilyModel, feature_matrix
from synthscan.io.loading import load_image

BUNDLED = Path(__file__).resolve().parents[1] / "explain" / "family_model.json"


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


def fit_family(data: str | Path, *, track: str | None = "256", out: Path = BUNDLED, command: str = "") -> FamilyModel:
    """Train on DATA's train-split fakes, evaluate on its val split, write OUT; returns the model."""
    fakes = {split: [s for s in read_dataset(data, split=split, track=track) if s.label == "fake"]
             for split in ("train", "val")}
    x = {split: _features_of(samples) for split, samples in fakes.items()}
    families = {split: [s.family for s in samples] for split, samples in fakes.items()}
    model = train(x["train"], families["train"])
    model.training.update(command=command, data=str(data), track=track,
                          train=evaluate(model, x["train"], families["train"]),
                          val=evaluate(model, x["val"], families["val"]))
    save(model, out)
    return model


def _features_of(samples: list[Sample]) -> np.ndarray:
    return feature_matrix(load_image(s.path).rgb for s in samples)

"""Zero-shot artifact scoring with a CLIP or SigLIP model (report 002).

Each semantic ("S") artifact of the taxonomy is named in a prompt, "a photo with {name}", and
compared with a neutral prompt, "a photo". The score of an artifact in one view (the whole image or
a crop, e.g. a top Grad-CAM region) is the two-way softmax of the image-text logits:

    score = sigmoid(logit(image, artifact prompt) - logit(image, neutral prompt))

so 0.5 means "the artifact prompt fits no better than the neutral one". An artifact is reported
when its best view's score reaches its threshold. Thresholds come from a JSON file written by
`calibrate_thresholds` (max F1 on labelled examples); without one every artifact uses
`DEFAULT_THRESHOLD` = 0.5, an uncalibrated rule (artifact prompt beats neutral prompt).

Any `transformers` model whose forward takes `input_ids` + `pixel_values` and returns
`logits_per_image` works: CLIP (`openai/clip-vit-base-patch32`, the default) and SigLIP
(`google/siglip-base-patch16-224`). SigLIP's learned logit bias cancels in the difference.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image
from pydantic import BaseModel, Field

from synthscan.explain.schema import ArtifactFinding, Box
from synthscan.explain.taxonomy_choices import ArtifactChoice, taxonomy_choices
from synthscan.output import write_text_atomic

DEFAULT_MODEL_ID = "openai/clip-vit-base-patch32"
SIGLIP_MODEL_ID = "google/siglip-base-patch16-224"
PROMPT = "a photo with {name}"
NEUTRAL_PROMPT = "a photo"
DEFAULT_THRESHOLD = 0.5


class Thresholds(BaseModel):
    """Per-artifact score thresholds for one model; `default` for artifacts not listed."""

    model_id: str
    default: float = DEFAULT_THRESHOLD
    per_artifact: dict[str, float] = Field(default_factory=dict)
    method: str = "default: artifact prompt beats the neutral prompt"
    # Per calibrated artifact: positives, negatives, and precision, recall and F1 at its threshold
    # on the calibration examples themselves (in-sample, so optimistic).
    fit: dict[str, dict[str, float]] = Field(default_factory=dict)

    def for_artifact(self, artifact_id: str) -> float:
        return self.per_artifact.get(artifact_id, self.default)

    def save(self, path: str | Path) -> Path:
        """Write the JSON atomically (a temporary file, then a rename)."""
        return write_text_atomic(path, self.model_dump_json(indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Thresholds:
        return cls.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))


class ClipArtifactScorer:
    """A CLIP/SigLIP model and its processor, scoring artifact prompts against image views.

    Pass `model` and `processor` to use objects already built (tests build tiny random ones);
    otherwise both are loaded from `model_id` (a hub id or a local directory) on first use.
    """

    def __init__(
        self,
        model_id: str = DEFAULT_MODEL_ID,
        *,
        model=None,
        processor=None,
        prompt: str = PROMPT,
        neutral_prompt: str = NEUTRAL_PROMPT,
        device: str = "cpu",
    ):
        if model is None or processor is None:
            from transformers import AutoModel, AutoProcessor

            from synthscan.detectors.pretrained import unavailable

            try:
                model, processor = AutoModel.from_pretrained(model_id), AutoProcessor.from_pretrained(model_id)
            except OSError as exc:  # offline and not cached, or no such folder: say what to do
                raise unavailable(model_id, exc) from exc
        self.model_id = model_id
        self.model = model.to(device).eval()
        self.processor = processor
        self.prompt = prompt
        self.neutral_prompt = neutral_prompt
        self.device = device

    def view_scores(
        self, rgb: np.ndarray, artifacts: Sequence[ArtifactChoice], boxes: Sequence[Box] = ()
    ) -> np.ndarray:
        """Scores in 0..1, shape (1 + len(boxes), len(artifacts)); row 0 is the whole image."""
        import torch

        views = [Image.fromarray(rgb)] + [Image.fromarray(_crop(rgb, box)) for box in boxes]
        texts = [self.prompt.format(name=name.lower()) for _, name, _ in artifacts] + [self.neutral_prompt]
        # SigLIP was trained on texts padded to the full length; CLIP on the longest in the batch.
        padding = "max_length" if self.model.config.model_type.startswith("siglip") else True
        inputs = self.processor(text=texts, images=views, return_tensors="pt", padding=padding, truncation=True)
        with torch.inference_mode():
            logits = self.model(**inputs.to(self.device)).logits_per_image.float()
        margin = logits[:, :-1] - logits[:, -1:]  # each artifact prompt vs the neutral prompt
        return torch.sigmoid(margin).cpu().numpy()

    def findings(
        self,
        rgb: np.ndarray,
        artifacts: Sequence[ArtifactChoice],
        boxes: Sequence[Box] = (),
        thresholds: Thresholds | None = None,
    ) -> list[ArtifactFinding]:
        """Artifacts whose best view reaches their threshold, strongest first; `box` is that
        view's box (None for the whole image)."""
        thresholds = thresholds or Thresholds(model_id=self.model_id)
        scores = self.view_scores(rgb, artifacts, boxes)
        view_boxes: list[Box | None] = [None, *[tuple(map(int, b)) for b in boxes]]
        found = []
        for j, (artifact_id, name, group) in enumerate(artifacts):
            best = int(scores[:, j].argmax())
            score, threshold = float(scores[best, j]), thresholds.for_artifact(artifact_id)
            if score < threshold:
                continue
            where = "the whole image" if view_boxes[best] is None else f"the region {view_boxes[best]}"
            found.append(ArtifactFinding(
                id=artifact_id, name=name, group=group, score=score, evidence="model",
                explanation=(
                    f"{self.model_id} matched \"{self.prompt.format(name=name.lower())}\" better than "
                    f"\"{self.neutral_prompt}\" in {where} (score {score:.2f}, threshold {threshold:.2f})."
                ),
                box=view_boxes[best], extent="image" if view_boxes[best] is None else "region",
            ))
        return sorted(found, key=lambda f: f.score, reverse=True)


def _crop(rgb: np.ndarray, box: Box) -> np.ndarray:
    x0, y0, x1, y1 = (int(v) for v in box)
    h, w = rgb.shape[:2]
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise ValueError(f"box {tuple(box)} is empty or outside the {w}x{h} image")
    return np.ascontiguousarray(rgb[y0:y1, x0:x1])


@lru_cache(maxsize=2)
def load_scorer(model_id: str = DEFAULT_MODEL_ID) -> ClipArtifactScorer:
    """A scorer loaded once per process and model id."""
    return ClipArtifactScorer(model_id)


def score_artifacts(
    rgb: np.ndarray,
    artifacts: Sequence[ArtifactChoice] | None = None,
    *,
    boxes: Sequence[Box] = (),
    model_id: str = DEFAULT_MODEL_ID,
    thresholds: Thresholds | str | Path | None = None,
    scorer: ClipArtifactScorer | None = None,
) -> list[ArtifactFinding]:
    """Semantic artifacts found in an HxWx3 uint8 image (and the crops `boxes`), as
    `ArtifactFinding(evidence="model")`. `artifacts` defaults to the taxonomy's "S" entries;
    `thresholds` is a `Thresholds` or the path of its JSON file."""
    if artifacts is None:
        artifacts = taxonomy_choices("S")
    if isinstance(thresholds, (str, Path)):
        thresholds = Thresholds.load(thresholds)
    scorer = scorer or load_scorer(model_id)
    return scorer.findings(rgb, artifacts, boxes, thresholds)


def calibrate_thresholds(
    scores: np.ndarray, present: np.ndarray, artifact_ids: Sequence[str], model_id: str
) -> Thresholds:
    """Per-artifact thresholds maximising F1 on labelled examples.

    `scores` and `present` have shape (n_examples, n_artifacts): each example's score (e.g. the
    max over its views of `view_scores`) and whether the artifact is really there. An artifact
    with no positive or no negative example keeps the default threshold.
    """
    from sklearn.metrics import precision_recall_curve

    scores, present = np.asarray(scores, float), np.asarray(present, bool)
    if scores.shape != present.shape or scores.shape[1] != len(artifact_ids):
        raise ValueError(f"scores {scores.shape}, labels {present.shape} and {len(artifact_ids)} ids disagree")
    per_artifact, fit = {}, {}
    for j, artifact_id in enumerate(artifact_ids):
        if present[:, j].all() or not present[:, j].any():
            continue
        precision, recall, cuts = precision_recall_curve(present[:, j], scores[:, j])
        f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
        best = int(f1.argmax())
        per_artifact[artifact_id] = float(cuts[best])
        fit[artifact_id] = {"positives": int(present[:, j].sum()), "negatives": int((~present[:, j]).sum()),
                            "precision": round(float(precision[best]), 4), "recall": round(float(recall[best]), 4),
                            "f1": round(float(f1[best]), 4)}
    return Thresholds(model_id=model_id, per_artifact=per_artifact, method=f"max F1 on {len(scores)} examples",
                      fit=fit)


class LabelsError(ValueError):
    """An artifact-labels CSV that cannot be used (missing column, unknown or non-semantic id)."""


def read_artifact_labels(csv_path: str | Path) -> list[tuple[str, set[str]]]:
    """(image path, artifact ids present) per row of a CSV with columns `path` and `artifacts`.

    `artifacts` lists taxonomy ids separated by ";" (empty: none of them is present). Relative
    paths are relative to the CSV's folder. Only semantic ("S") artifacts can be used: those are
    the ones CLIP scores.
    """
    csv_path = Path(csv_path)
    semantic = {artifact_id for artifact_id, _, _ in taxonomy_choices("S")}
    with csv_path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"path", "artifacts"} <= set(reader.fieldnames):
            raise LabelsError(f"{csv_path}: needs the columns 'path' and 'artifacts', has {reader.fieldnames}")
        rows = []
        for line, row in enumerate(reader, start=2):
            ids = {a.strip() for a in (row["artifacts"] or "").split(";") if a.strip()}
            if unknown := sorted(ids - semantic):
                raise LabelsError(f"{csv_path} line {line}: {', '.join(unknown)} is not a semantic (S) artifact id "
                                  "of the taxonomy (see synthscan/explain/taxonomy.json)")
            rows.append((str(csv_path.parent / row["path"]), ids))
    if not rows:
        raise LabelsError(f"{csv_path}: no rows")
    return rows


def calibrate_on_labels(
    csv_path: str | Path,
    model_id: str = DEFAULT_MODEL_ID,
    *,
    scorer: ClipArtifactScorer | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Thresholds, list[tuple[str, str]]]:
    """Thresholds fitted on a labels CSV (`read_artifact_labels`), scoring each image whole
    (the view its image-level labels describe). Returns them and the (path, error) of every
    image that could not be read; those are left out."""
    from synthscan.io.errors import ImageLoadError
    from synthscan.io.loading import load_image

    rows = read_artifact_labels(csv_path)
    artifacts = taxonomy_choices("S")
    ids = [artifact_id for artifact_id, _, _ in artifacts]
    scorer = scorer or load_scorer(model_id)
    scores, present, failed = [], [], []
    for i, (path, labels) in enumerate(rows, start=1):
        try:
            rgb = load_image(path).rgb
        except ImageLoadError as exc:
            failed.append((path, f"{exc.code}: {exc.message}"))
        else:
            scores.append(scorer.view_scores(rgb, artifacts)[0])
            present.append([artifact_id in labels for artifact_id in ids])
        if progress:
            progress(i, len(rows))
    if not scores:
        raise LabelsError(f"{csv_path}: none of the {len(rows)} images could be read")
    return calibrate_thresholds(np.array(scores), np.array(present), ids, scorer.model_id), failed

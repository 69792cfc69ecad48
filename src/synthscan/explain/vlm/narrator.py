"""The narrator interface and the ask-validate-retry loop every chat backend shares.

A backend only implements `ChatNarrator.complete(image, turns) -> str`: one chat completion for a
conversation whose first user turn carries the image. `narrate` builds the prompt from the
evidence, asks, validates the answer (`prompt.parse_answer`) and, while it does not validate,
asks again with the validation error, at most `retries` more times; then it raises
`NarrationError` naming what never validated.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np
from PIL import Image

from synthscan.explain.schema import ArtifactFinding, Explanation, Narrative
from synthscan.explain.taxonomy_choices import ArtifactChoice, taxonomy_choices
from synthscan.explain.vlm.prompt import AnswerInvalid, NarrationAnswer, build_prompt, parse_answer, retry_prompt

Turn = dict[str, str]  # {"role": "user" | "assistant", "text": ...}


class NarrationError(RuntimeError):
    """The narrator could not produce a valid answer (or could not be reached)."""


class Narrator(Protocol):
    """verdict and p_fake are the pixel verdict; provenance_note, when the file's metadata was
    read, says what it holds and what decided the final verdict."""

    def narrate(self, image_rgb: np.ndarray, evidence: Explanation, p_fake: float, verdict: str,
                provenance_note: str | None = None) -> Narrative: ...


def shown_image(image_rgb: np.ndarray, max_side: int) -> tuple[Image.Image, float]:
    """The image as sent to the model (downscaled so its longer side is <= max_side) and the
    scale shown / original."""
    image = Image.fromarray(image_rgb)
    scale = min(1.0, max_side / max(image.size))
    if scale < 1.0:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.LANCZOS)
    return image, scale


class ChatNarrator:
    """Base of the chat backends. `artifacts` are the (id, name, group) the model may name
    (default: the whole taxonomy); `model_name` goes into `Narrative.source` as "vlm:<model>"."""

    model_name = "unknown"

    def __init__(self, artifacts: Sequence[ArtifactChoice] | None = None, retries: int = 2, max_side: int = 1024):
        self.artifacts = list(artifacts) if artifacts is not None else taxonomy_choices()
        self.retries = retries
        self.max_side = max_side

    def complete(self, image: Image.Image, turns: list[Turn]) -> str:
        raise NotImplementedError

    def narrate(self, image_rgb: np.ndarray, evidence: Explanation, p_fake: float, verdict: str,
                provenance_note: str | None = None) -> Narrative:
        image, scale = shown_image(image_rgb, self.max_side)
        allowed_ids = [a[0] for a in self.artifacts]
        prompt = build_prompt(evidence, p_fake, verdict, self.artifacts, image.size, scale, provenance_note)
        turns: list[Turn] = [{"role": "user", "text": prompt}]
        errors = []
        for _ in range(1 + self.retries):
            reply = self.complete(image, turns)
            try:
                answer = parse_answer(reply, allowed_ids, image.size)
            except AnswerInvalid as exc:
                errors.append(str(exc))
                turns += [{"role": "assistant", "text": reply}, {"role": "user", "text": retry_prompt(str(exc))}]
                continue
            return self._to_narrative(answer, evidence, scale, image_rgb.shape[1], image_rgb.shape[0])
        listed = "\n".join(f"  attempt {i + 1}: {e}" for i, e in enumerate(errors))
        raise NarrationError(f"{self.model_name} gave no valid answer in {len(errors)} attempts:\n{listed}")

    def _to_narrative(
        self, answer: NarrationAnswer, evidence: Explanation, scale: float, width: int, height: int
    ) -> Narrative:
        """Taxonomy names and groups replace the model's; boxes go back to original pixels; the
        score is the evidence's score for the same artifact, 0 when the model named it alone."""
        choices = {a[0]: a for a in self.artifacts}
        measured = {a.id: a.score for a in evidence.artifacts}
        findings = []
        for item in answer.artifacts:
            _, name, group = choices[item.id]
            box = None
            if item.box is not None:
                x0, y0, x1, y1 = (round(v / scale) for v in item.box)
                box = (max(0, x0), max(0, y0), min(width, x1), min(height, y1))
            findings.append(ArtifactFinding(
                id=item.id, name=name, group=group, score=measured.get(item.id, 0.0), evidence="model",
                explanation=item.explanation, box=box, extent="region" if box else "image",
            ))
        return Narrative(summary=answer.summary, artifacts=findings, source=f"vlm:{self.model_name}")

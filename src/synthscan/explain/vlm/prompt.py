"""What a vision-language model is asked, and how its answer is checked.

The prompt carries the measured evidence (score, verdict, attribution regions, measured and
CLIP-scored artifacts, family estimate) so that the model explains what was found instead of
inventing, and lists the taxonomy ids it may use. The answer must be one JSON object matching
`NarrationAnswer`; `parse_answer` strips code fences, validates it, and rejects ids outside the
list and boxes outside the image, with an error message short enough to send back to the model.

Boxes in the prompt and in the answer are in pixels of the image the model is shown (`shown_size`),
which may be a downscaled copy; `scale` = shown / original converts the evidence's boxes.
"""

from __future__ import annotations

import re
from typing import Sequence

from pydantic import BaseModel, Field, ValidationError, ValidationInfo, field_validator

from synthscan.explain.schema import Box, Explanation
from synthscan.explain.taxonomy_choices import ArtifactChoice


class AnswerArtifact(BaseModel):
    id: str
    name: str
    explanation: str = Field(min_length=1)
    box: Box | None = None

    @field_validator("id")
    @classmethod
    def _id_is_allowed(cls, value: str, info: ValidationInfo) -> str:
        allowed = (info.context or {}).get("allowed_ids")
        if allowed is not None and value not in allowed:
            raise ValueError(f"{value!r} is not one of the allowed artifact ids")
        return value

    @field_validator("box")
    @classmethod
    def _box_is_inside(cls, box: Box | None, info: ValidationInfo) -> Box | None:
        size = (info.context or {}).get("size")
        if box is not None and size is not None:
            x0, y0, x1, y1 = box
            if not (0 <= x0 < x1 <= size[0] and 0 <= y0 < y1 <= size[1]):
                raise ValueError(f"box {list(box)} is empty or outside the {size[0]}x{size[1]} image")
        return box


class NarrationAnswer(BaseModel):
    """The JSON a narrator must return."""

    artifacts: list[AnswerArtifact]
    summary: str = Field(min_length=1)


class AnswerInvalid(ValueError):
    """The model's answer is not a valid `NarrationAnswer`; the message says why."""


ANSWER_FORMAT = (
    '{"artifacts": [{"id": "<an allowed id>", "name": "<its name>", '
    '"explanation": "<one sentence: what is visible, and where>", "box": [x0, y0, x1, y1] or null}], '
    '"summary": "<two to four plain sentences for a non-expert>"}'
)


def _box(box: Sequence[int] | None, scale: float) -> str:
    return "none" if box is None else str([round(v * scale) for v in box])


def build_prompt(
    evidence: Explanation,
    p_fake: float,
    verdict: str,
    allowed: Sequence[ArtifactChoice],
    shown_size: tuple[int, int],
    scale: float = 1.0,
    provenance_note: str | None = None,
) -> str:
    """The first user message (the image is attached separately). `provenance_note`: what the
    file's metadata says and whether it decided the final verdict (`provenance_sentence`)."""
    lines = [
        "You explain why an image detector reached its verdict about the attached image.",
        "Use the measured evidence below and what you can see; do not invent artifacts that neither supports.",
        "",
        f"Verdict: {verdict} (probability that the image is generated: {p_fake:.2f}).",
        f"The image is {shown_size[0]} x {shown_size[1]} pixels; boxes are [x0, y0, x1, y1] in these pixels.",
    ]
    if evidence.regions:
        lines.append("Regions the detector's attribution map points at, strongest first:")
        lines += [f"- {_box(r.box, scale)} attribution {r.score:.2f} ({r.source})" for r in evidence.regions[:5]]
    if evidence.artifacts:
        lines.append("Artifacts found by measurement or by an image-text model:")
        lines += [
            f"- {a.id} ({a.evidence}, score {a.score:.2f}, "
            f"{'whole image, strongest in box' if a.extent == 'image' else 'box'} {_box(a.box, scale)}): {a.explanation}"
            for a in evidence.artifacts
        ]
    if provenance_note:
        lines.append(f"What the file says about itself (provenance, already fused into the final verdict): "
                     f"{provenance_note} Say so in the summary when it decided or contradicts the verdict.")
    if evidence.family is not None:
        probabilities = ", ".join(f"{k} {v:.2f}" for k, v in evidence.family.probabilities.items())
        lines.append(f"Generator family estimate: {probabilities}.")
    lines += ["", "Allowed artifact ids (use no other):"]
    lines += [f"- {artifact_id}: {name}" for artifact_id, name, _ in allowed]
    lines += [
        "",
        "Answer with one JSON object and nothing else, in this form:",
        ANSWER_FORMAT,
        "List only artifacts that the evidence or the image supports (the list may be empty); "
        "give a box when you can say where the artifact is. The summary must agree with the verdict "
        "(the final one, when the provenance decided it).",
    ]
    return "\n".join(lines)


def retry_prompt(error: str) -> str:
    """The follow-up message after an answer that did not validate."""
    return (
        f"Your answer was not valid: {error}\n"
        f"Answer again with only the corrected JSON object, in this form:\n{ANSWER_FORMAT}"
    )


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


def parse_answer(text: str, allowed_ids: Sequence[str], shown_size: tuple[int, int]) -> NarrationAnswer:
    """The validated answer in `text` (code fences and text around the object are ignored)."""
    fenced = _FENCE.search(text)
    body = (fenced.group(1) if fenced else text).strip()
    start, end = body.find("{"), body.rfind("}")
    if start == -1 or end < start:
        raise AnswerInvalid("the answer contains no JSON object")
    try:
        return NarrationAnswer.model_validate_json(
            body[start : end + 1], context={"allowed_ids": set(allowed_ids), "size": shown_size}
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise AnswerInvalid(problems) from None

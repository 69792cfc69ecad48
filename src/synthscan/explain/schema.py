"""The explanation attached to a scan result: the one contract every explanation part shares.

Attribution maps, trace views, measured artifacts, CLIP scores, the narrative (template or
vision-language model), family attribution and the HTML report all read or write these models.
`ScanResult.explanation` holds `Explanation.model_dump()`; `schemas/explanation.schema.json` is
this module's published JSON schema (a test keeps the two equal).

Boxes are (x0, y0, x1, y1) in pixels of the image as loaded (EXIF orientation applied).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, Field

Box = tuple[int, int, int, int]
Evidence = Literal["measured", "model"]
Extent = Literal["region", "image"]


def box_area(box: Box) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])


def box_intersection(a: Box, b: Box) -> int:
    """Area where two boxes overlap."""
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when both are empty)."""
    inter = box_intersection(a, b)
    union = box_area(a) + box_area(b) - inter
    return inter / union if union else 0.0


class MapImage(BaseModel):
    """A picture of evidence (heatmap, residual, spectrum, ...).

    Exactly one of `png_base64` (embedded, the default for reports and JSON on request) or
    `path` (a PNG written next to the output) is set.
    """

    kind: str  # e.g. "gradcam", "saliency", "integrated-gradients", "occlusion", "residual", "npr", "spectrum"
    title: str
    width: int
    height: int
    png_base64: str | None = None
    path: str | None = None
    note: str = ""  # how to read it, one sentence


class Region(BaseModel):
    """A region the detector's attribution map points at, strongest first."""

    box: Box
    score: float  # mean normalised attribution inside the box, 0..1
    source: str = "gradcam"


class ArtifactFinding(BaseModel):
    """One artifact from the taxonomy, with how strongly and where it was found."""

    id: str
    name: str
    group: str
    score: float  # 0..1; for measured artifacts a documented mapping of the measurement
    evidence: Evidence
    explanation: str  # one sentence built from the measurement or the model's answer
    box: Box | None = None
    # "region": one part of the image differs from the rest, and `box` marks it; "image": a
    # property of the whole image (e.g. its saturation), and `box` marks where it is strongest.
    extent: Extent = "region"


def ranked(findings: Iterable[ArtifactFinding]) -> list[ArtifactFinding]:
    """Region findings first, then whole-image ones, each strongest first.

    A region that differs from the rest of its image is the more specific evidence: it says where
    to look, and a person can check it there. A whole-image property (a saturated palette, a
    smooth sky) is common in photographs too, so it is listed after, whatever its score.
    """
    return sorted(findings, key=lambda f: (f.extent != "region", -f.score))


class SpectrumSummary(BaseModel):
    azimuthal_profile: list[float]  # mean log-magnitude per radial frequency bin, low -> high
    peaks: list[tuple[float, float, float]] = Field(default_factory=list)  # (fy, fx, strength), cycles/pixel


class FamilyAttribution(BaseModel):
    """P(generator family | image is generated); 'unknown' when no family fits."""

    probabilities: dict[str, float]  # keys: gan, diffusion, autoregressive, unknown
    top: str
    model: str


class Narrative(BaseModel):
    """A plain-language account; `source` says who wrote it ("template" or "vlm:<model>")."""

    summary: str
    artifacts: list[ArtifactFinding] = Field(default_factory=list)
    source: str = "template"


class Explanation(BaseModel):
    maps: list[MapImage] = Field(default_factory=list)
    regions: list[Region] = Field(default_factory=list)
    artifacts: list[ArtifactFinding] = Field(default_factory=list)
    spectrum: SpectrumSummary | None = None
    family: FamilyAttribution | None = None
    narrative: Narrative | None = None
    seconds: float = 0.0
    warnings: list[str] = Field(default_factory=list)


if __name__ == "__main__":
    # Regenerate the published schema: python -m synthscan.explain.schema > schemas/explanation.schema.json
    import json

    print(json.dumps(Explanation.model_json_schema(), indent=2))

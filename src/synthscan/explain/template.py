"""The offline narrative: a few plain sentences built only from what was measured.

Every number and place in the text comes from the inputs (the calibrated score, the decision
threshold, the attribution regions, the measured artifacts and the family attribution); the
template adds wording, never findings. The same inputs always give the same text.
"""

from __future__ import annotations

from collections.abc import Sequence

from synthscan.explain.schema import ArtifactFinding, FamilyAttribution, Narrative, Region, ranked

ARTIFACT_MIN_SCORE = 0.5  # artifacts at or above this are cited as found
MAX_CITED = 3


def where(box: tuple[int, int, int, int], size: tuple[int, int] | None) -> str:
    """'x0,y0-x1,y1', plus the part of the image ('upper left', 'centre', ...) when its size is known."""
    x0, y0, x1, y1 = box
    text = f"pixels {x0},{y0}-{x1},{y1}"
    if size is None:
        return text
    width, height = size
    cx, cy = (x0 + x1) / 2 / width, (y0 + y1) / 2 / height
    vertical = "upper" if cy < 1 / 3 else "lower" if cy > 2 / 3 else "centre"
    horizontal = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "centre"
    part = "centre" if vertical == horizontal else f"{vertical} {horizontal}"  # e.g. "lower centre", "centre left"
    return f"{text} ({part} of the image)"


def _verdict_sentence(p_fake: float, verdict: str, threshold: float) -> str:
    score = f"The detector gives a {p_fake:.0%} probability that this image is generated"
    if verdict == "uncertain":
        return f"{score}, inside the model's uncertain band around its threshold of {threshold:.0%}: verdict uncertain."
    side = "at or above" if p_fake >= threshold else "below"
    return f"{score}, {side} its threshold of {threshold:.0%}: verdict {verdict}."


def _regions_sentence(regions: Sequence[Region], size: tuple[int, int] | None, target: str) -> str:
    if not regions:
        return "The attribution map has no distinct region: the score rests on the image as a whole."
    top = regions[0]
    towards = "generated" if target == "fake" else "real"
    sentence = (f"What pushes the score towards '{towards}' most ({top.source} map) lies at "
                f"{where(top.box, size)}, mean attribution {top.score:.2f}")
    if len(regions) > 1:
        sentence += f", then at {len(regions) - 1} weaker region(s)"
    return sentence + "."


def cited_artifacts(artifacts: Sequence[ArtifactFinding]) -> list[ArtifactFinding]:
    """The artifacts scoring at least `ARTIFACT_MIN_SCORE`, in `ranked` order (regions first)."""
    return ranked(a for a in artifacts if a.score >= ARTIFACT_MIN_SCORE)


def _artifacts_sentences(artifacts: Sequence[ArtifactFinding] | None, size: tuple[int, int] | None) -> list[str]:
    if artifacts is None:  # not measured
        return []
    if not artifacts:
        return ["No artifact was measured strongly enough to report."]
    found = cited_artifacts(artifacts)
    if not found:
        best = max(artifacts, key=lambda a: a.score)
        return [f"None of the {len(artifacts)} measured artifacts scores {ARTIFACT_MIN_SCORE} or more "
                f"(highest: {best.name}, {best.score:.2f})."]
    sentences = []
    for a in found[:MAX_CITED]:
        place = "" if not a.box else f" at {where(a.box, size)}" if a.extent == "region" else (
            f" (whole image; strongest at {where(a.box, size)})")
        sentences.append(f"{a.name} ({a.score:.2f}){place}: {a.explanation.rstrip('.')}.")
    if len(found) > MAX_CITED:
        sentences.append(f"{len(found) - MAX_CITED} more artifact(s) score {ARTIFACT_MIN_SCORE} or more.")
    return sentences


def _family_sentence(family: FamilyAttribution | None, verdict: str) -> str | None:
    if family is None or verdict == "real":
        return None
    p = family.probabilities.get(family.top, 0.0)
    if family.top == "unknown":
        return f"Its traces match no known generator family well (p(unknown) = {p:.2f})."
    return f"If generated, its traces resemble the {family.top} family most (p = {p:.2f})."


def template_narrative(
    p_fake: float,
    verdict: str,
    threshold: float,
    regions: Sequence[Region] = (),
    artifacts: Sequence[ArtifactFinding] | None = None,
    family: FamilyAttribution | None = None,
    size: tuple[int, int] | None = None,
    target: str = "fake",
    provenance_note: str | None = None,
) -> Narrative:
    """The narrative for one image. `artifacts` is None when they were not measured (then the
    text is silent about them). `size` is (width, height), used to name where boxes lie;
    `target` is the output ("fake" or "real") the regions' attribution map explains;
    `provenance_note` (what the file's metadata says, `provenance_sentence`) ends the summary."""
    sentences = [_verdict_sentence(p_fake, verdict, threshold), _regions_sentence(regions, size, target)]
    sentences += _artifacts_sentences(artifacts, size)
    if family_sentence := _family_sentence(family, verdict):
        sentences.append(family_sentence)
    if provenance_note:
        sentences.append(provenance_note)
    return Narrative(summary=" ".join(sentences), artifacts=cited_artifacts(artifacts or []), source="template")

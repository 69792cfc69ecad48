"""The artifacts the model-based explainers (CLIP scoring, VLM narrators) may name.

They take plain `(id, name, group)` triples so that callers and tests can pass any list; this
module builds the default list from the packaged taxonomy (`synthscan.explain.taxonomy`).
"""

from __future__ import annotations

ArtifactChoice = tuple[str, str, str]  # (id, name, group)


def taxonomy_choices(evidence: str | None = None) -> list[ArtifactChoice]:
    """The taxonomy's artifacts as (id, name, group), optionally only those whose evidence kinds
    include `evidence` ("S" = semantic, "M" = measurable)."""
    try:
        from synthscan.explain.taxonomy import load_taxonomy
    except ModuleNotFoundError as exc:
        raise RuntimeError(
            "the artifact taxonomy (synthscan.explain.taxonomy) is not available in this install; "
            "pass the artifacts explicitly as a list of (id, name, group)"
        ) from exc
    return [
        (a.id, a.name, a.group)
        for a in load_taxonomy().artifacts
        if evidence is None or evidence in a.evidence
    ]

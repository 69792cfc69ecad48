"""The artifact taxonomy as data: ids, names, groups and evidence kinds.

`taxonomy.json` transcribes every entry of `../shared/docs/artifact-taxonomy.md` (the list of
visual artifacts the source reports ask a detector to name). Evidence kinds: "M" = measurable
from pixels (residuals, spectra, local statistics, the detector's maps), "S" = semantic, needs a
vision-language or CLIP-style model. Ids are kebab-case and stable: explanations, prompts and
reports refer to artifacts by id.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel

EvidenceKind = Literal["M", "S"]


class ArtifactGroup(BaseModel):
    id: str
    name: str


class ArtifactKind(BaseModel):
    id: str
    name: str
    group: str  # an ArtifactGroup id
    evidence: list[EvidenceKind]
    description: str

    @property
    def measurable(self) -> bool:
        return "M" in self.evidence


class Taxonomy(BaseModel):
    source: str
    groups: list[ArtifactGroup]
    artifacts: list[ArtifactKind]

    def get(self, artifact_id: str) -> ArtifactKind:
        """The artifact with this id; KeyError names the unknown id."""
        for artifact in self.artifacts:
            if artifact.id == artifact_id:
                return artifact
        raise KeyError(f"unknown artifact id {artifact_id!r}")

    def group_name(self, group_id: str) -> str:
        return next(g.name for g in self.groups if g.id == group_id)


@lru_cache(maxsize=1)
def load_taxonomy() -> Taxonomy:
    """The packaged taxonomy (parsed once per process)."""
    text = resources.files("synthscan.explain").joinpath("taxonomy.json").read_text(encoding="utf-8")
    return Taxonomy.model_validate(json.loads(text))

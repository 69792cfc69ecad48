"""The offline narrator: the deterministic template (`synthscan.explain.template`) behind the
`Narrator` interface, so callers can treat "no VLM" like any other backend."""

from __future__ import annotations

import numpy as np

from synthscan.explain.schema import Explanation, Narrative


class TemplateNarrator:
    """`threshold` is the model's decision threshold, which the template quotes."""

    def __init__(self, threshold: float = 0.5):
        self.threshold = threshold

    def narrate(self, image_rgb: np.ndarray, evidence: Explanation, p_fake: float, verdict: str,
                provenance_note: str | None = None) -> Narrative:
        from synthscan.explain.template import template_narrative

        return template_narrative(
            p_fake, verdict, self.threshold, regions=evidence.regions, artifacts=evidence.artifacts,
            family=evidence.family, size=(image_rgb.shape[1], image_rgb.shape[0]), provenance_note=provenance_note,
        )

"""Explanations: attribution maps, trace views, measured artifacts, family and narrative.

`explain_image(model, image)` returns an `Explanation` (see `schema.py`, the shared contract).
"""

from synthscan.explain.explainer import explain_image
from synthscan.explain.schema import Explanation

__all__ = ["Explanation", "explain_image"]

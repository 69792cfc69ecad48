"""Explanations: attribution maps, trace views, measured artifacts, family and narrative.

`explain_image(model, image, score=...)` returns an `Explanation` (see `schema.py`, the shared
contract). The names are loaded on first use, so that `synthscan.result` can import
`synthscan.explain.schema` without loading the explainers (which use `synthscan.result`).
"""

from __future__ import annotations

__all__ = ["Explanation", "explain_image"]


def __getattr__(name: str):
    if name == "Explanation":
        from synthscan.explain.schema import Explanation

        return Explanation
    if name == "explain_image":
        from synthscan.explain.explainer import explain_image

        return explain_image
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""synthscan: detect AI-generated images and explain why."""

__version__ = "0.1.0"

from synthscan.result import Decision, Notice, ScanResult  # noqa: E402
from synthscan.scanning import Scanner, scan  # noqa: E402
from synthscan.explain.schema import Explanation  # noqa: E402

__all__ = ["Decision", "Explanation", "Notice", "ScanResult", "Scanner", "explain_image", "scan", "__version__"]


def __getattr__(name: str):
    # Loaded on first use: the explainers import torch, which scoring an ONNX export does not need.
    if name == "explain_image":
        from synthscan.explain.explainer import explain_image

        return explain_image
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

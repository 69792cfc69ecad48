"""synthscan: detect AI-generated images and explain why."""

__version__ = "0.1.0"

from synthscan.result import Decision, Notice, ScanResult  # noqa: E402
from synthscan.scanning import Scanner, scan  # noqa: E402
from synthscan.explain import Explanation, explain_image  # noqa: E402

__all__ = ["Decision", "Explanation", "Notice", "ScanResult", "Scanner", "explain_image", "scan", "__version__"]

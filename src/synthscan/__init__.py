"""synthscan: detect AI-generated images and explain why."""

__version__ = "0.1.0"

from synthscan.result import Decision, Notice, ScanResult  # noqa: E402
from synthscan.scanning import Scanner, scan  # noqa: E402

__all__ = ["Decision", "Notice", "ScanResult", "Scanner", "scan", "__version__"]

"""The detector zoo: one module per detector, found by `catalog.py` (no list to keep here).

The names below are loaded on first use, so that importing a torch-free part of this package
(`scoring`, `tiling`, `policy`) does not import torch.
"""

from __future__ import annotations

import importlib

_HOME = {
    "CalibratedModel": "base", "Detector": "base", "DetectorConfig": "base", "InputPolicy": "policy",
    "ImageScore": "scoring", "ModelInfo": "scoring", "Scorer": "scoring", "DEFAULT_MODEL": "scoring",
    "get_detector_class": "registry", "list_bundled_models": "registry", "list_detectors": "registry",
    "load_model": "registry", "register_detector": "registry",
}
__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name in _HOME:
        return getattr(importlib.import_module(f"synthscan.detectors.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The detector zoo: one module per detector, found by `catalog.py` (no list to keep here)."""

from synthscan.detectors.base import CalibratedModel, Detector, DetectorConfig, ImageScore, InputPolicy, ModelInfo
from synthscan.detectors.registry import (
    DEFAULT_MODEL,
    get_detector_class,
    list_bundled_models,
    list_detectors,
    load_model,
    register_detector,
)

__all__ = [
    "CalibratedModel",
    "DEFAULT_MODEL",
    "Detector",
    "DetectorConfig",
    "ImageScore",
    "InputPolicy",
    "ModelInfo",
    "get_detector_class",
    "list_bundled_models",
    "list_detectors",
    "load_model",
    "register_detector",
]

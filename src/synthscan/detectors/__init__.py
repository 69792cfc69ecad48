"""The detector zoo. Importing this package registers every built-in detector."""

from synthscan.detectors import (  # noqa: F401  (each registers itself)
    backbone,
    freqnet_wavelet,
    lenet,
    mlp,
    npr,
    resnet18_scratch,
    rine,
    spai_style,
    spectral_dae,
    texture_gbm,
)
from synthscan.detectors.base import CalibratedModel, Detector, InputPolicy, ModelInfo
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
    "InputPolicy",
    "ModelInfo",
    "get_detector_class",
    "list_bundled_models",
    "list_detectors",
    "load_model",
    "register_detector",
]

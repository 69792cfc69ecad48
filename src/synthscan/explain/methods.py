"""Attribution methods as registered classes: every list of methods derives from here.

A method is a subclass of `AttributionMethod` with a `name` (registered on definition, like
pytorch-grad-cam's method classes), a `title`, whether its map `overlays` the image (drawn over
it in reports, against e.g. a spectrum shown beside it), `supports(detector)` and `attribute(...)`.
The CLI's `--method` help, the explainer's titles and the report's heatmap layer all read this
registry, and each detector names its default method (`Detector.default_attribution`), so the
defaults never need a fallback. The built-in methods live in `attribution.py` (captum) and
`tile_scores.py`; importing `synthscan.explain.attribution` registers them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from synthscan.detectors.base import CalibratedModel, Detector
from synthscan.explain.maps import AttributionMap

if TYPE_CHECKING:
    from collections.abc import Mapping

TARGETS = {"real": 0, "fake": 1}
_METHODS: dict[str, type[AttributionMethod]] = {}


class AttributionMethod:
    name: ClassVar[str]
    title: ClassVar[str]
    overlays: ClassVar[bool] = True  # the map points at pixels of the image itself
    needs_layers: ClassVar[bool] = False  # Grad-CAM, activations: `Detector.attribution_layers()`
    needs_gradients: ClassVar[bool] = False  # a differentiable detector
    target_dependent: ClassVar[bool] = True  # False: one map whatever the target ("any")
    # True: the map shows evidence *for* the target only; False: sensitivity in either direction
    # (|gradient|), so the regions that push towards the other target light up as well.
    signed: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            if cls.name in _METHODS and _METHODS[cls.name].__qualname__ != cls.__qualname__:
                raise ValueError(f"attribution method {cls.name!r} defined twice")
            _METHODS[cls.name] = cls

    @classmethod
    def supports(cls, detector: Detector) -> bool:
        if cls.needs_layers and not detector.attribution_layers():
            return False
        if cls.needs_gradients and not any(p.requires_grad for p in detector.parameters()):
            return False
        return True

    def attribute(
        self, model: CalibratedModel | Detector, rgb: np.ndarray, target: str = "fake", *,
        known: Mapping | None = None,
    ) -> list[AttributionMap]:
        """Maps of one (H, W, 3) uint8 image w.r.t. `target` ("fake" or "real"); `known`: the
        calibrated P(fake) of crops the scan already scored, by box (methods may reuse them)."""
        raise NotImplementedError

    @classmethod
    def map_title(cls, m: AttributionMap) -> str:
        return f"{cls.title} ({m.method.split(':', 1)[1]})" if ":" in m.method else f"{cls.title}, target '{m.target}'"

    @classmethod
    def note(cls, m: AttributionMap) -> str:
        """How to read a map of this method, one sentence."""
        return m.note or f"Bright areas move the detector's output towards '{m.target}' the most."


def get_method(name: str) -> type[AttributionMethod]:
    """The method registered under `name` (or under the part before ':' of a map's kind)."""
    try:
        return _METHODS[name.split(":", 1)[0]]
    except KeyError:
        raise ValueError(f"unknown attribution method {name!r}; known: {', '.join(_METHODS)}") from None


def method_names() -> tuple[str, ...]:
    return tuple(_METHODS)


def overlays(kind: str) -> bool:
    """Whether a map of this kind is drawn over the image (an attribution heatmap)."""
    method = _METHODS.get(kind.split(":", 1)[0])
    return method is not None and method.overlays

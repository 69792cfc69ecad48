"""Detector classes by name: the built-in ones, those registered at run time, and plug-ins.

Built-in detectors are the modules of the `synthscan.detectors` package: defining a `Detector`
subclass with a `name` registers it (`Detector.__init_subclass__`), and all the modules are
imported on the first lookup, so a new detector is a new file (plus its TOML), with no list to
edit. A third-party package
adds detectors through the entry-point group `synthscan.detectors`, e.g. in its pyproject.toml:

    [project.entry-points."synthscan.detectors"]
    my-detector = "my_package.detector:MyDetector"

This module imports nothing from synthscan at import time (modules are found by name), so the
detector modules, `base.py` and `registry.py` can all depend on it without an import cycle.
"""

from __future__ import annotations

import importlib
import pkgutil
import warnings
from importlib.metadata import entry_points

ENTRY_POINT_GROUP = "synthscan.detectors"
BUILTIN_PACKAGE = "synthscan.detectors"

_DETECTORS: dict[str, type] = {}
_loaded = False


def register(cls: type) -> type:
    """Add a detector class under its `name`; the same class twice is fine, two classes are not."""
    if cls.name in _DETECTORS and _DETECTORS[cls.name] is not cls:
        raise ValueError(f"detector name {cls.name!r} registered twice")
    _DETECTORS[cls.name] = cls
    return cls


def _load_all() -> None:
    """Import every built-in detector module once, then every installed plug-in."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    package = importlib.import_module(BUILTIN_PACKAGE)
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{BUILTIN_PACKAGE}.{module.name}")
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = entry.load()
        except Exception as exc:  # noqa: BLE001 - a broken plug-in must not hide the built-ins
            warnings.warn(f"detector plug-in {entry.name!r} ({entry.value}) failed to load: {exc}", stacklevel=2)
            continue
        register(cls)


def reload_plugins() -> None:
    """Look for plug-ins again (after installing one in a running process, or in tests)."""
    global _loaded
    _loaded = False
    _load_all()


def get(name: str) -> type:
    _load_all()
    try:
        return _DETECTORS[name]
    except KeyError:
        raise KeyError(f"unknown detector {name!r}; known: {', '.join(sorted(_DETECTORS))}") from None


def all_detectors() -> dict[str, type]:
    _load_all()
    return dict(sorted(_DETECTORS.items()))

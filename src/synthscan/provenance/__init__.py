"""Provenance: what a file says about its own origin (C2PA Content Credentials, EXIF/XMP/IPTC,
embedded generation parameters, invisible watermarks, file-history hints), and the documented
rules (`fusion`) that join it with the pixel verdict.

>>> from synthscan.provenance import read_file
>>> read_file("image.png").signals["generator"].status        # doctest: +SKIP

The names are loaded on first use (as in `synthscan.explain`), so that `synthscan.result` can
import `synthscan.provenance.model` without loading the readers (which use `synthscan.result`).
"""

from __future__ import annotations

import importlib

_HOME = {
    "attach_provenance": "attach", "provenance_sentence": "attach", "read_file": "attach",
    "RULES": "fusion", "fuse": "fusion",
    "Fusion": "model", "Hint": "model", "Provenance": "model", "Signal": "model",
    "read_provenance": "reader",
}
__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name in _HOME:
        return getattr(importlib.import_module(f"synthscan.provenance.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

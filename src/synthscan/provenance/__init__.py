"""Provenance: what a file says about its own origin (C2PA Content Credentials, EXIF/XMP/IPTC,
embedded generation parameters, invisible watermarks, file-history hints), and the documented
rules (`fusion`) that join it with the pixel verdict.

>>> from synthscan.provenance import read_file
>>> read_file("image.png").signals["generator"].status        # doctest: +SKIP
"""

from __future__ import annotations

from synthscan.provenance.attach import attach_provenance, provenance_sentence, read_file
from synthscan.provenance.fusion import RULES, fuse
from synthscan.provenance.model import Fusion, Hint, Provenance, Signal
from synthscan.provenance.reader import read_provenance

__all__ = ["Fusion", "Hint", "Provenance", "RULES", "Signal", "attach_provenance", "fuse", "provenance_sentence",
           "read_file", "read_provenance"]

"""Offline fitting of the package data that runtime modules read (`synthscan fit ...`).

Each command writes versioned package data with the command that made it: the family model
(`family.py`), the artifact thresholds (`artifact_thresholds.py`); the CLIP thresholds and the
fingerprints' family spectra come from `explain.clip_zero_shot` and `explain.fingerprints`.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path


def command_line() -> str:
    """The command this process was started with, as a user would type it again."""
    if Path(sys.argv[0]).name == "synthscan":
        return shlex.join(["synthscan", *sys.argv[1:]])
    return shlex.join(sys.argv)

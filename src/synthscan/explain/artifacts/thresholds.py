"""Every measure's thresholds, read from one data file: `thresholds.json` beside this module.

A measure's score is `ramp(value, onset, full)`: 0 at or below `onset`, 1 at or above `full`,
linear between. Onsets sit near the 90th percentile and fulls near the 99th percentile of each
raw value over real photos, so about 1 photo in 10 crosses each onset. The file records the
command that fits them (`synthscan fit artifact-thresholds`), which also prints the percentiles
for fakes: on synthbench the fakes' distributions are close to the reals', so these measures
describe an image; they do not detect generation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

FILE = "thresholds.json"
FORMAT_VERSION = 1


def ramp(value: float, onset: float, full: float) -> float:
    return float(np.clip((value - onset) / (full - onset), 0.0, 1.0))


@dataclass(frozen=True)
class Threshold:
    onset: float
    full: float
    unit: str = ""

    def score(self, value: float) -> float:
        return ramp(value, self.onset, self.full)


@lru_cache(maxsize=1)
def load_thresholds() -> dict[str, Threshold]:
    data = json.loads((resources.files("synthscan.explain.artifacts") / FILE).read_text())
    if data.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{FILE} was written by a newer synthscan (format {data['format_version']}); upgrade")
    return {k: Threshold(**v) for k, v in data["thresholds"].items()}  # "percentiles": for people


def threshold(artifact_id: str) -> Threshold:
    return load_thresholds()[artifact_id]

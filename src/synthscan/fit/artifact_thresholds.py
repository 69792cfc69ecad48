"""`synthscan fit artifact-thresholds`: each measured artifact's onset and full score from real photos.

For a sample of real photos (and, for comparison, fakes) of a dataset's train split, every
measure's raw value is computed; a measure's onset is the reals' 90th percentile and its full
score their 99th, so about 1 photo in 10 crosses each onset. The thresholds file is written with
the command and the percentiles of both labels.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from synthscan.data.datasets import read_dataset
from synthscan.explain.artifacts import MEASURES, Analysis
from synthscan.explain.artifacts.thresholds import FILE, FORMAT_VERSION, load_thresholds
from synthscan.io.loading import load_image

BUNDLED = Path(__file__).resolve().parents[1] / "explain" / "artifacts" / FILE
PERCENTILES = (50, 90, 99)


def measure_values(paths: list[str], progress: Callable[[int], None] = lambda i: None) -> dict[str, list[float]]:
    """Every measure's raw value on each image (a measure that finds nothing to measure is left out)."""
    values: dict[str, list[float]] = {}
    for i, path in enumerate(paths, start=1):
        analysis = Analysis(load_image(path).rgb, None)
        for measure in MEASURES:
            if (measured := measure(analysis)) is not None:
                values.setdefault(measured.id, []).append(measured.value)
        progress(i)
    return values


def fit_thresholds(
    data: str | Path, *, per_label: int = 150, track: str | None = "256", seed: int = 0, out: Path = BUNDLED,
    command: str = "", progress: Callable[[int], None] = lambda i: None,
) -> dict:
    """Sample `per_label` train-split reals and fakes, write the thresholds file; returns its content."""
    samples = read_dataset(data, split="train", track=track)
    rng = np.random.default_rng(seed)
    percentiles = {}
    for label in ("real", "fake"):
        chosen = [s.path for s in samples if s.label == label]
        chosen = [chosen[i] for i in rng.permutation(len(chosen))[:per_label]]
        values = measure_values(chosen, progress)
        percentiles[label] = {k: dict(zip((f"p{q}" for q in PERCENTILES), np.percentile(v, PERCENTILES).round(4).tolist()))
                              for k, v in values.items()}
    old = load_thresholds()  # a measure that found nothing to measure keeps its thresholds
    content = {
        "format_version": FORMAT_VERSION,
        "command": command,
        "fitted": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "fitted_on": f"{per_label} {data} train real photos ({track} track); onset = their p90, full = their p99",
        "thresholds": {k: {"onset": p["p90"], "full": p["p99"], "unit": t.unit} if (p := percentiles["real"].get(k))
                       else {"onset": t.onset, "full": t.full, "unit": t.unit} for k, t in old.items()},
        "percentiles": percentiles,
    }
    out.write_text(json.dumps(content, indent=2) + "\n")
    return content

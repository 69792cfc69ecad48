"""Run every measure on one image, on threads for large images, and keep the findings that count."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from synthscan.explain.artifacts.analysis import Analysis
from synthscan.explain.artifacts.colour import chroma_residual, colour_coherence_break, colour_distribution, smooth_background
from synthscan.explain.artifacts.edges import edge_aliasing, over_sharpening
from synthscan.explain.artifacts.noise import noise_inconsistency, patterned_noise
from synthscan.explain.artifacts.resampling import (
    grid_pattern,
    over_smoothing,
    resolution_inconsistency,
    spectral_peaks,
    upsampling_parity,
)
from synthscan.explain.schema import ArtifactFinding, Region, ranked
from synthscan.explain.taxonomy import load_taxonomy
from synthscan.explain.traces import ImageTraces

MEASURES = (upsampling_parity, grid_pattern, spectral_peaks, over_smoothing, resolution_inconsistency,
            noise_inconsistency, patterned_noise, edge_aliasing, over_sharpening, colour_distribution,
            colour_coherence_break, chroma_residual, smooth_background)


MIN_SCORE = 0.25
MIN_SIDE = 8  # pixels; smaller images get no measured artifacts
THREADED_PIXELS = 512 * 512  # from this size on, the measures run on several threads


def available_cpus() -> int:
    """CPUs this process may run on (its affinity, which cluster schedulers set), else all."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def measure_artifacts(
    image: np.ndarray | ImageTraces, regions: list[Region] | None = None, *, threads: int | None = None
) -> list[ArtifactFinding]:
    """Findings with score >= MIN_SCORE, in `ranked` order (see the module docstring).

    The measures are independent and their numpy/scipy work releases the GIL, so they run on
    `threads` threads (default: for images of a quarter megapixel or more, the CPUs available, at
    most 4; smaller ones gain less than a pool costs); the findings do not depend on it.
    """
    if min(ImageTraces.of(image).rgb.shape[:2]) < MIN_SIDE:
        return []  # a few pixels carry no local statistics to measure
    taxonomy = load_taxonomy()
    analysis = Analysis(image, regions)
    if threads is None:
        threads = min(4, available_cpus()) if analysis.grey.size >= THREADED_PIXELS else 1
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(lambda measure: measure(analysis), MEASURES))
    else:
        results = [measure(analysis) for measure in MEASURES]
    findings = []
    for measured in results:
        if measured is None or measured.score < MIN_SCORE:
            continue
        kind = taxonomy.get(measured.id)
        findings.append(ArtifactFinding(id=kind.id, name=kind.name, group=kind.group, score=round(measured.score, 3),
                                        evidence="measured", explanation=measured.reason, box=measured.box,
                                        extent=measured.extent))
    return ranked(findings)

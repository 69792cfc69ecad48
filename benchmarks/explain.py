"""Explanation benchmark: speed of the full offline explanation, and localisation sanity.

(a) Seconds per image for `explain_image`, maps embedded as base64 (scoring + heatmap + regions
    + trace views + measured artifacts + family + template narrative), at 256 x 256 and
    1024 x 1024, for the bundled default model (texture-gbm: no gradients, so its heatmap is the
    tile-score map) and for synthscan-npr (Grad-CAM).
(b) Localisation: photos from scikit-image's bundled data, each with one square patch made
    generated-like (2x up-sampled with nearest or bilinear interpolation, or over-smoothed) and
    pasted back at a random place. For each case it reports the IoU between the patch and
    - the top Grad-CAM region (synthscan-npr),
    - the top tile-score-map region (the default model),
    - the box of the top measured artifact (model-independent) in the explanation's order:
      findings about a region first, then those about the whole image (colour saturation, chroma
      residual, smooth background), each strongest first; for comparison, the box of the
      highest-scoring finding of either extent, and an upper bound (the best-fitting box of any
      finding, had the ranking picked it).
    Means are given over the cases that have a box and over all cases (no box counts as IoU 0).

    python benchmarks/explain.py [--cases 60] [--repeats 5] [--seed 0] [--large]

Nothing here reads ../shared; all numbers are printed, none are stored.
"""

from __future__ import annotations

import argparse
from collections import Counter
import os
import statistics
import time
import tracemalloc

import numpy as np
import torch
from PIL import Image, ImageFilter
from skimage import data

from synthscan.detectors.registry import load_model
from synthscan.explain import explain_image
from synthscan.explain.schema import box_iou

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "stereo_motorcycle", "retina")
MANIPULATIONS = ("nearest-2x", "bilinear-2x", "over-smoothed")
IMAGE_SIZE = 256
PATCH_SIDES = (64, 128)


def photo(name: str) -> np.ndarray:
    image = getattr(data, name)()
    return image[0] if isinstance(image, tuple) else image  # stereo_motorcycle is a pair


def make_generated_like(patch: np.ndarray, manipulation: str) -> np.ndarray:
    """A patch whose pixel statistics look generated: up-sampled from half size, or smoothed."""
    image = Image.fromarray(patch)
    if manipulation == "over-smoothed":
        return np.asarray(image.filter(ImageFilter.GaussianBlur(2.0)))
    h, w = patch.shape[:2]
    half = image.resize((w // 2, h // 2), Image.BOX)
    return np.asarray(half.resize((w, h), Image.NEAREST if manipulation == "nearest-2x" else Image.BILINEAR))


def mean_logit(model, rgb: np.ndarray) -> float:
    """The detector's image logit (mean over tiles, before calibration)."""
    return model.score(rgb).raw_logit


def make_case(rng: np.random.Generator, index: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int], str]:
    """(photo crop, the same with its patch made generated-like, patch box, manipulation)."""
    source = photo(PHOTOS[index % len(PHOTOS)])
    y = rng.integers(0, source.shape[0] - IMAGE_SIZE + 1)
    x = rng.integers(0, source.shape[1] - IMAGE_SIZE + 1)
    clean = source[y : y + IMAGE_SIZE, x : x + IMAGE_SIZE]
    rgb = clean.copy()
    side = int(rng.integers(PATCH_SIDES[0], PATCH_SIDES[1] + 1)) // 2 * 2
    py, px = (int(v) for v in rng.integers(0, IMAGE_SIZE - side + 1, size=2))
    manipulation = MANIPULATIONS[(index // len(PHOTOS)) % len(MANIPULATIONS)]
    rgb[py : py + side, px : px + side] = make_generated_like(rgb[py : py + side, px : px + side], manipulation)
    return clean, rgb, (px, py, px + side, py + side), manipulation


def timing(model, repeats: int) -> None:
    astronaut = photo("astronaut")
    images = {
        "256x256": astronaut[128:384, 128:384].copy(),
        "1024x1024": np.asarray(Image.fromarray(astronaut).resize((1024, 1024), Image.LANCZOS)),
    }
    explain_image(model, images["256x256"])  # warm-up: imports, first-call allocations
    for label, rgb in images.items():
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            explanation = explain_image(model, rgb)
            seconds.append(time.perf_counter() - start)
        heatmap = explanation.maps[0].kind if explanation.maps else "none"
        parts = "; ".join(explanation.warnings) or "all parts present"
        print(f"  {label}: median {statistics.median(seconds):.3f} s, min {min(seconds):.3f} s over {repeats} runs, "
              f"heatmap {heatmap} ({parts})")


def large_photo(model) -> None:
    """One 12-megapixel explanation: its time and its peak traced memory (numpy's buffers report
    to tracemalloc, torch's do not: the detector's own activations are not counted)."""
    rgb = np.asarray(Image.fromarray(photo("astronaut")).resize((4000, 3000), Image.LANCZOS))
    tracemalloc.start()
    start = time.perf_counter()
    explain_image(model, rgb)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"  4000x3000: {seconds:.2f} s, peak traced memory {peak / 2**20:.0f} MiB (the image itself: "
          f"{rgb.nbytes / 2**20:.0f} MiB)")


def _first_box(explanation) -> tuple[int, int, int, int] | None:
    return next((a.box for a in explanation.artifacts if a.box is not None), None)


def _highest_scoring_box(explanation) -> tuple[int, int, int, int] | None:
    boxed = [a for a in explanation.artifacts if a.box is not None]
    return max(boxed, key=lambda a: a.score).box if boxed else None


def localisation(default, npr, cases: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    tables: dict[str, dict[str, list[float | None]]] = {}
    logit_shift: dict[str, dict[str, list[float]]] = {default.name: {}, npr.name: {}}
    top_ids: Counter[str] = Counter()  # which finding gives the top box

    def record(line: str, manipulation: str, box, patch_box) -> None:
        tables.setdefault(line, {m: [] for m in MANIPULATIONS})[manipulation].append(
            None if box is None else box_iou(box, patch_box))

    for index in range(cases):
        clean, rgb, patch_box, manipulation = make_case(rng, index)
        for model in (default, npr):
            logit_shift[model.name].setdefault(manipulation, []).append(mean_logit(model, rgb) - mean_logit(model, clean))
        cam = explain_image(npr, rgb, maps="none")
        record(f"top Grad-CAM region ({npr.name})", manipulation, cam.regions[0].box if cam.regions else None, patch_box)
        tiles = explain_image(default, rgb, maps="none", methods=("tile-scores",))
        record(f"top tile-score-map region ({default.name})", manipulation,
               tiles.regions[0].box if tiles.regions else None, patch_box)
        record("top measured-artifact box (regions first)", manipulation, _first_box(tiles), patch_box)
        record("highest-scoring measured-artifact box (either extent)", manipulation,
               _highest_scoring_box(tiles), patch_box)
        boxed = [a for a in tiles.artifacts if a.box is not None]
        # Upper bound: the finding whose box fits the patch best, had the ranking picked it.
        record("best measured-artifact box (any finding, an upper bound)", manipulation,
               max((a.box for a in boxed), key=lambda b: box_iou(b, patch_box)) if boxed else None, patch_box)
        top_ids[boxed[0].id if boxed else "(none)"] += 1

    # Context for the map numbers: a map can only point at a patch the detector reacts to.
    for name, shifts in logit_shift.items():
        print(f"{name} logit change from the patch: " + ", ".join(
            f"{m} mean {np.mean(v):+.3f} (|change| {np.mean(np.abs(v)):.3f})" for m, v in shifts.items()))
    for line, table in tables.items():
        found = [v for vs in table.values() for v in vs if v is not None]
        every = [v or 0.0 for vs in table.values() for v in vs]
        per = ", ".join(f"{m} {np.mean([x or 0.0 for x in v]):.3f} ({sum(x is not None for x in v)}/{len(v)} boxed)"
                        for m, v in table.items() if v)
        over_found = f"{np.mean(found):.3f} over the {len(found)} boxed" if found else "no box"
        print(f"{line}: mean IoU {np.mean(every):.3f} over {len(every)} cases (no box = 0; {over_found}), "
              f"IoU >= 0.5 in {np.mean([v >= 0.5 for v in every]):.0%}; per manipulation (no box = 0): {per}")
    print("top measured-artifact box comes from: " + ", ".join(f"{k} {v}" for k, v in top_ids.most_common()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--large", action="store_true", help="also time one 12-megapixel explanation per model")
    args = parser.parse_args()
    default, npr = load_model(), load_model("synthscan-npr")
    print(f"machine: {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}")
    for model in (default, npr):
        print(f"timing, model {model.name} {model.version} ({model.detector.name}):")
        timing(model, args.repeats)
        if args.large:
            large_photo(model)
    localisation(default, npr, args.cases, args.seed)


if __name__ == "__main__":
    main()

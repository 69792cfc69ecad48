"""Explanation benchmark: speed of the full offline explanation, and localisation sanity.

(a) Seconds per image for `explain_image` with the bundled default model, maps embedded as
    base64 (scoring + Grad-CAM + regions + trace views + measured artifacts + family + template
    narrative, whichever parts this build has), at 256 x 256 and 1024 x 1024.
(b) Localisation: photos from scikit-image's bundled data, each with one square patch made
    generated-like (2x up-sampled with nearest or bilinear interpolation, or over-smoothed) and
    pasted back at a random place. For each case it reports the IoU between the patch and the
    top Grad-CAM region, and the top measured-artifact box when artifacts are available.

    python benchmarks/explain.py [--cases 60] [--repeats 5] [--seed 0]

Nothing here reads ../shared; all numbers are printed, none are stored.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
from PIL import Image, ImageFilter
from skimage import data

from synthscan.detectors.registry import load_model
from synthscan.detectors.tiling import make_tiles, to_tensor_batch
from synthscan.explain import explain_image

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


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def mean_logit(model, rgb: np.ndarray) -> float:
    """The detector's image logit (mean over tiles, before calibration)."""
    return float(model.logits(to_tensor_batch(make_tiles(rgb, model.input_policy).crops)).mean())


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
        parts = "; ".join(explanation.warnings) or "all parts present"
        print(f"{label}: median {statistics.median(seconds):.3f} s, min {min(seconds):.3f} s "
              f"over {repeats} runs ({parts})")


def localisation(model, cases: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    cam_iou: dict[str, list[float]] = {m: [] for m in MANIPULATIONS}
    artifact_iou: dict[str, list[float]] = {m: [] for m in MANIPULATIONS}
    logit_shift: dict[str, list[float]] = {m: [] for m in MANIPULATIONS}
    for index in range(cases):
        clean, rgb, patch_box, manipulation = make_case(rng, index)
        logit_shift[manipulation].append(mean_logit(model, rgb) - mean_logit(model, clean))
        explanation = explain_image(model, rgb, maps="none")
        cam_iou[manipulation].append(iou(explanation.regions[0].box, patch_box) if explanation.regions else 0.0)
        boxed = [a for a in explanation.artifacts if a.box is not None]
        if boxed:
            artifact_iou[manipulation].append(iou(max(boxed, key=lambda a: a.score).box, patch_box))

    def report(label: str, table: dict[str, list[float]]) -> None:
        values = [v for vs in table.values() for v in vs]
        if not values:
            print(f"{label}: not available in this build")
            return
        per = ", ".join(f"{m} {np.mean(v):.3f} (n={len(v)})" for m, v in table.items() if v)
        hits = np.mean([v >= 0.5 for v in values])
        print(f"{label}: mean IoU {np.mean(values):.3f} over {len(values)} cases, IoU >= 0.5 in {hits:.0%}; {per}")

    # Context for the Grad-CAM numbers: a map can only point at a patch the detector reacts to.
    print("detector logit change from the patch: " + ", ".join(
        f"{m} mean {np.mean(v):+.3f} (|change| {np.mean(np.abs(v)):.3f})" for m, v in logit_shift.items() if v))
    report("top Grad-CAM region", cam_iou)
    report("top measured-artifact box", artifact_iou)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model = load_model()
    print(f"machine: {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}; "
          f"model {model.name} {model.version}")
    timing(model, args.repeats)
    localisation(model, args.cases, args.seed)


if __name__ == "__main__":
    main()

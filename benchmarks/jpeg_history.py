"""How well `synthscan.detectors.jpeg_history` reads an image's last JPEG quality, and its cost.

Takes every 97th synthbench 256 px image (at most --images; all are JPEG 95 as stored), makes
each processed copy below, and counts how often the estimate is right: within 2 of the quality
of the last save, or None where no JPEG lattice is left (PNG-like resize, WebP, an off-grid
crop). The route of `synthscan-default` only asks "below 93?", so the table also gives how often
each copy would be routed.

    python benchmarks/jpeg_history.py [--root ../shared/synthbench/images256] [--images 40]

Needs ../shared/synthbench: a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from synthscan.data.augment import jpeg, webp
from synthscan.detectors.jpeg_history import estimate_jpeg_quality
from synthscan.evaluate.perturb import resize, social
from synthscan.io import load_image

# name -> (make the copy, the quality its last save had, None: no JPEG lattice expected)
COPIES = {
    "as stored (JPEG 95)": (lambda img: img, 95),
    "resize 0.5 (after the save)": (lambda img: resize(img, 0.5), None),
    "WebP 60": (lambda img: webp(img, 60), None),
    "crop 3,5 px (off the grid)": (lambda img: img[3:, 5:], None),
    "chain:social (JPEG 80)": (social, 80),
    **{f"JPEG {q}": ((lambda q: lambda img: jpeg(img, q))(q), q) for q in (50, 62, 70, 75, 82, 88, 90, 92, 94)},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("../shared/synthbench/images256"))
    parser.add_argument("--images", type=int, default=40)
    args = parser.parse_args()
    paths = sorted(args.root.glob("*/*/*.jpg"))[::97][: args.images]
    right = {name: 0 for name in COPIES}
    routed = {name: 0 for name in COPIES}
    seconds, calls = 0.0, 0
    for path in paths:
        img = load_image(str(path)).rgb
        for name, (make, expected) in COPIES.items():
            copy = make(img)
            t0 = time.perf_counter()
            estimate = estimate_jpeg_quality(copy)
            seconds, calls = seconds + time.perf_counter() - t0, calls + 1
            right[name] += estimate is None if expected is None else (estimate is not None and abs(estimate - expected) <= 2)
            routed[name] += estimate is not None and estimate < 93
    print(f"{len(paths)} images; {1000 * seconds / calls:.1f} ms per estimate (256 px)")
    print("| copy | estimate right | routed (below 93) |\n|---|---|---|")
    for name in COPIES:
        print(f"| {name} | {right[name]}/{len(paths)} | {routed[name]}/{len(paths)} |")


if __name__ == "__main__":
    main()

"""The candidate heads for re-compressed images, on the val split after re-posting.

For each candidate (a `ClipProbe(recompressed=True)` of `generalise.py`), fit it on the train
split and place its threshold as `generalise.py --ship` does (3% FPR on its out-of-fold JPEG
copies of reals); route each val image as the default does (`jpeg_history`, below quality 93)
and judge the routed ones by that head and threshold, the others by the shipped default's first
head. Prints balanced accuracy clean and under `chain:social` and `jpeg:75`, and the drop. This
is what, beside the protocol, chose the shipped second head (MODEL_CARD "Re-posted images"); it
reads the val split, so it is a check, not the selection rule.

    python benchmarks/recompressed_heads.py --data ../shared/synthbench/manifest.csv \
        clip-blocks-recompressed clip-blocks-jpeg-repost-recompressed ...

Tokens of the val images (clean and perturbed) are cached under --cache; the protocol's own
caches come from `generalise.py`. Needs ../shared/synthbench: a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
from scipy.special import logit

import generalise as G  # benchmarks/ is on the path when a script here runs
from synthscan.data.datasets import read_manifest
from synthscan.detectors.clip_blocks import ClipBlocksConfig, ClipBlocksDetector
from synthscan.detectors.jpeg_history import estimate_jpeg_quality
from synthscan.detectors.registry import load_model
from synthscan.evaluate.perturb import parse_spec, rng_for
from synthscan.io import load_image

CONDITIONS = ("clean", "chain:social", "jpeg:75")


def val_tokens(val: list, cache: Path) -> dict[str, np.ndarray]:
    key = hashlib.sha1(json.dumps([s.path for s in val]).encode()).hexdigest()[:12]
    file = cache / f"val-repost-tokens-{key}.npz"
    if file.exists():
        return dict(np.load(file))
    detector, out = ClipBlocksDetector(ClipBlocksConfig()), {}
    for condition in CONDITIONS:
        images = []
        for s in val:
            rgb = load_image(s.path).rgb
            if condition != "clean":
                p = parse_spec(condition)[0]
                rgb = p(rgb, rng_for(0, s.path, p))
            images.append(rgb)
        out[condition] = detector.tokens_of_images(images)
        out[condition + "/quality"] = np.array([estimate_jpeg_quality(img) or 0 for img in images])
        print(f"  tokens of val, {condition}: done", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(file, **out)
    return out


def balanced_accuracy(y: np.ndarray, margin: np.ndarray) -> float:
    called = margin >= 0
    return 0.5 * (called[y == 1].mean() + 1 - called[y == 0].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("candidates", nargs="+", help="ClipProbe(recompressed=True) names of generalise.py")
    parser.add_argument("--data", default="../shared/synthbench/manifest.csv")
    parser.add_argument("--cache", type=Path, default=Path("runs/generalise-cache"))
    args = parser.parse_args()
    val = read_manifest(args.data, split="val", track="256")
    y = np.array([s.y for s in val])
    tokens = val_tokens(val, args.cache)
    first = load_model("synthscan-default")  # its own head; the route is replaced by each candidate
    c = first.info.calibration
    first_threshold = (logit(first.info.decision.threshold) - c.bias) / c.scale  # raw logit
    first_margin = {k: first.detector.head_logits(tokens[k]).numpy() - first_threshold for k in CONDITIONS}
    clean = balanced_accuracy(y, first_margin["clean"])
    print(f"clean val balanced accuracy (first head): {clean:.3f}")

    samples = read_manifest(args.data, track="256")
    G.LABELS = np.array([s.y for s in samples])
    bench = G.Bench(samples, G.make_folds([G.lineage(s.generator) for s in samples], G.LABELS, 5), 5, args.cache)
    print("| head | protocol AP (JPEG copies) | condition | routed | bal acc | drop (pts) |\n|---|---|---|---|---|---|")
    for name in args.candidates:
        result = G.run_protocol(name, bench)
        head, _ = G.fit_for_shipping(name, bench)
        for condition in CONDITIONS[1:]:
            quality = tokens[condition + "/quality"]
            routed = (quality > 0) & (quality < G.Routed.below_quality)
            margin = np.where(routed, head.head_logits(tokens[condition]).numpy() - result["pooled_threshold_logit"],
                              first_margin[condition])
            b = balanced_accuracy(y, margin)
            print(f"| {name} | {result['mean']['clean']['ap']:.3f} | {condition} | {routed.mean():.2f} | {b:.3f} "
                  f"| {100 * (clean - b):.1f} |", flush=True)


if __name__ == "__main__":
    main()

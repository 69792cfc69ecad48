"""Which re-encodings should `--stability` use by default? Each single variant, each pair of
`stability.VARIANTS` and all four, by the confident errors they turn `uncertain` and the correct
verdicts they lose.

Runs on synthbench val images that `benchmarks/robustness.py` does not sample (so the choice is
not made on the images that measure it), scores each image and its four re-encodings once, then
replays the stability rule for every subset. A scan with k variants costs about k + 1 plain
scans (one pass each, plus the original): 2x for one variant, 3x for a pair, 5x for all four.
--robustness-sample runs on robustness.py's own sample instead, to check a choice there.

--margins: for the default pair, re-score only the images within M logits outside the uncertain
band (`StabilityCheck(margin=M)`): the share re-scored sets the cost, 1 + 2 x share plain scans.

    python benchmarks/stability_variants.py [--images 300] [--model synthscan-default] [--robustness-sample]
        [--margins 1,2,3,4,inf]
"""

from __future__ import annotations

import argparse
import itertools
import random

from robustness import sample  # benchmarks/ is on the path when a script here runs

from synthscan.data.datasets import read_dataset
from synthscan.io import load_image
from synthscan.scanning import Scanner
from synthscan.stability import DEFAULT_VARIANTS, VARIANTS, StabilityCheck


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/synthbench/manifest.csv")
    parser.add_argument("--model", default="synthscan-default")
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--robustness-sample", action="store_true",
                        help="use robustness.py's sample (--per-generator 3) instead of the images outside it")
    parser.add_argument("--margins", default="", help="comma-separated logit margins to try for the default pair")
    args = parser.parse_args()

    val = read_dataset(args.data, split="val", track="256")
    measured = sample(val, 3, 0)  # robustness.py's sample with --per-generator 3
    if args.robustness_sample:
        chosen, where = measured, "images of robustness.py's sample"
    else:
        rest = [s for s in val if s.path not in {m.path for m in measured}]
        chosen = random.Random(args.seed).sample(rest, min(args.images, len(rest)))
        where = "val images outside robustness.py's sample"
    scanner = Scanner(args.model, workers=1)
    check = StabilityCheck(scanner, list(VARIANTS))
    images = [load_image(s.path) for s in chosen]
    plain = scanner.scan_images(images)
    variants = check.score(images)

    truth = ["ai-generated" if s.y else "real" for s in chosen]
    confident = [r.verdict != "uncertain" for r in plain]
    errors = sum(c and r.verdict != t for c, r, t in zip(confident, plain, truth))
    right = sum(c and r.verdict == t for c, r, t in zip(confident, plain, truth))
    print(f"{args.model}: {len(chosen)} {where}; "
          f"{errors} confident errors, {right} confident correct verdicts without --stability")
    print("| variants | scans per image | confident errors left | cut | correct verdicts made uncertain |")
    print("|---|---|---|---|---|")
    names = list(VARIANTS)
    for subset in [*itertools.combinations(names, 1), *itertools.combinations(names, 2), tuple(names)]:
        idx = [names.index(v) for v in subset]
        flips = [c and any(vs[i].verdict != r.verdict for i in idx) for c, r, vs in zip(confident, plain, variants)]
        left = sum(c and not f and r.verdict != t for c, f, r, t in zip(confident, flips, plain, truth))
        lost = sum(f and r.verdict == t for f, r, t in zip(flips, plain, truth))
        cut = 1 - left / errors if errors else 0.0
        print(f"| {', '.join(subset)} | {1 + len(subset)} | {left} | {cut:.0%} | {lost} |")
    if args.margins:
        idx = [names.index(v) for v in DEFAULT_VARIANTS]
        print(f"\nDefault pair ({', '.join(DEFAULT_VARIANTS)}), re-scoring only images within M logits outside the band:")
        print("| margin M | share re-scored | scans per image | confident errors left | cut | correct verdicts made uncertain |")
        print("|---|---|---|---|---|---|")
        for margin in [float(m) for m in args.margins.split(",")]:
            rule = StabilityCheck(scanner, list(DEFAULT_VARIANTS), margin)
            near = [rule.skip_reason(r.p_fake, r.verdict) is None for r in plain]
            flips = [n and any(vs[i].verdict != r.verdict for i in idx) for n, r, vs in zip(near, plain, variants)]
            left = sum(c and not f and r.verdict != t for c, f, r, t in zip(confident, flips, plain, truth))
            lost = sum(f and r.verdict == t for f, r, t in zip(flips, plain, truth))
            cut = 1 - left / errors if errors else 0.0
            share = sum(near) / len(near)
            print(f"| {margin:g} | {share:.0%} | {1 + len(idx) * share:.2f} | {left} | {cut:.0%} | {lost} |")


if __name__ == "__main__":
    main()

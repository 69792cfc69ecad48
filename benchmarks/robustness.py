"""Robustness of the bundled models on synthbench val: one command, docs/robustness.md + plots.

    python benchmarks/robustness.py --data ../shared/synthbench/manifest.csv --split val

Three parts, each printed as it finishes and written to docs/robustness.md (+ .json, plots in
docs/robustness/):
1. Perturbation sweep (`synthscan eval --perturb`) of synthscan-default and synthscan-npr on a
   seeded sample of at most --per-generator images per generator (real sources included), so the
   run fits a couple of shared CPU cores; the sample size is written into the doc. --sweep-model
   adds other models (e.g. models/synthscan-clip-jpeg-aug.json) to this part only, each with its
   balanced-accuracy drop under the social chain beside the default's target.
2. Calibration on the whole val split: each method fitted on one half (by path hash) and measured
   on the other half, which no fit saw; also the threshold for a 3% real-photo FPR.
3. `--stability` on the sample: confident errors (wrong verdicts outside the uncertain band) with
   and without it, and its time cost.
4. Attacks (`synthscan eval --attack`) crafted white-box on a differentiable model (--attack-model:
   synthscan-npr unless told) on a further sub-sample (--attack-images; 0: the whole split), and
   transferred to synthscan-default (gradient-free: transfer is its black-box attack); with
   --adversarial-model (repeatable), the same attacks white-box on each such model (the attack
   model trained further with `synthscan train --init ATTACK_MODEL --adversarial ...`), and its
   clean val AP against the attack model's.
Targets are those of issue 14; the doc says which hold. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from synthscan.data.datasets import read_dataset
from synthscan.detectors.registry import load_model
from synthscan.evaluate.calibration import METHODS, false_positive_rate, plot_reliability
from synthscan.evaluate.metrics import binary_metrics, expected_calibration_error
from synthscan.evaluate.perturb import parse_spec
from synthscan.evaluate.sweep import run_sweep
from synthscan.evaluate.sweep_report import HEADERS, plot, summary_rows
from synthscan.evaluate.report import _md_table
from synthscan.scanning import Scanner
from synthscan.train.calibrate import fit_decision, holdout_split, image_logits

MODELS = ["synthscan-default", "synthscan-npr"]
SPECS = ["jpeg:95,75,60", "webp:80,60", "resize:0.5,0.75", "blur:1", "crop:0.5", "noise:2", "chain:social",
         "chain:screenshot"]
TARGET_FPR = 0.03


def sample(samples, per_generator: int, seed: int):
    by_gen = defaultdict(list)
    for s in samples:
        by_gen[(s.label, s.generator)].append(s)
    rng = random.Random(seed)
    out = []
    for key in sorted(by_gen):
        group = sorted(by_gen[key], key=lambda s: s.path)
        out += rng.sample(group, min(per_generator, len(group)))
    return out


def log(msg: str) -> None:
    print(msg, flush=True)


def sweep_part(picked, seed, plots_dir, extra_models=()):
    t0 = time.time()
    scanners = [Scanner(m, workers=1) for m in [*MODELS, *extra_models]]
    perts = [p for spec in SPECS for p in parse_spec(spec)]
    sweep = run_sweep(scanners, picked, perts, seed=seed, dataset="synthbench", split="val sample")
    rows = summary_rows(sweep)
    log(_md_table(HEADERS, rows))
    images = plot(sweep, plots_dir)
    targets = []
    d = "synthscan-default"
    for kind, level, what in [("jpeg", "75", "AP after JPEG 75"), ("webp", "60", "AP after WebP 60"),
                              ("resize", "0.5", "AP after 0.5x resize")]:
        ap = sweep.row(d, kind, level).metrics["ap"]
        targets.append((what, ">= 0.90", f"{ap:.3f}", ap >= 0.90))
    for scanner in [scanners[0], *scanners[len(MODELS):]]:
        m = scanner.model.name
        drop = 100 * (sweep.row(m, "clean").metrics["balanced_accuracy"]
                      - sweep.row(m, "chain", "social").metrics["balanced_accuracy"])
        what = "balanced accuracy drop under chain:social (points)"
        targets.append((what if m == d else f"{m} (not the default): {what}", "<= 10", f"{drop:.1f}", drop <= 10))
    for t in targets:
        log(f"target {t[0]}: {t[2]} ({'met' if t[3] else 'NOT met'}, target {t[1]})")
    return sweep, rows, images, targets, time.time() - t0


def calibration_part(val, plots_dir):
    t0 = time.time()
    fit, held = holdout_split(val, 0.5)
    rows, curves, fpr_rows = [], {}, []
    for name in MODELS:
        model = load_model(name)
        shipped = model.info.calibration.model_copy()
        x = {s.path: z for s, z in zip(val, image_logits(model, val))}
        xf, yf = np.array([x[s.path] for s in fit]), np.array([s.y for s in fit])
        xh, yh = np.array([x[s.path] for s in held]), np.array([s.y for s in held])
        p = shipped.apply(xh)
        rows.append([name, "shipped platt (fitted on all of val)", f"{expected_calibration_error(yh, p):.4f}", "—", "—"])
        curves[f"{name} shipped"] = (yh, p)
        for method in METHODS:
            fit_decision(model, xf, yf, method=method, fitted_on="val half A")
            p = model.info.calibration.apply(xh)
            ece = expected_calibration_error(yh, p)
            bal = binary_metrics(yh, p, model.info.decision.threshold)["balanced_accuracy"]
            rows.append([name, f"{method} (fitted on half A)", f"{ece:.4f}", f"{bal:.3f}",
                         f"{false_positive_rate(yh, p, model.info.decision.threshold):.3f}"])
            if method == "isotonic":
                curves[f"{name} isotonic"] = (yh, p)
        for method in METHODS:
            fit_decision(model, xf, yf, method=method, target_fpr=TARGET_FPR, fitted_on="val half A")
            p = model.info.calibration.apply(xh)
            d = model.info.decision
            m = binary_metrics(yh, p, d.threshold)
            fpr_rows.append([name, method, f"{d.threshold:.4f}", f"{false_positive_rate(yf, model.info.calibration.apply(xf), d.threshold):.3f}",
                             f"{false_positive_rate(yh, p, d.threshold):.3f}", f"{m['fake_accuracy']:.3f}", f"{m['balanced_accuracy']:.3f}"])
    headers = ["model", "calibration", "held-out ECE", "held-out bal acc", "held-out FPR"]
    fpr_headers = ["model", "calibration", f"threshold for FPR {TARGET_FPR}", "FPR half A (fit)", "FPR half B (held out)",
                   "fake acc B", "bal acc B"]
    log(f"calibration: fitted on {len(fit)} val images, measured on {len(held)} others")
    log(_md_table(headers, rows))
    log(_md_table(fpr_headers, fpr_rows))
    img = plot_reliability(curves, plots_dir / "reliability.png", title="Reliability, held-out val half")
    best = min(float(r[2]) for r in rows if "half A" in r[1] and r[0] == "synthscan-default")
    target = ("lowest held-out ECE of synthscan-default", "<= 0.05", f"{best:.4f}", best <= 0.05)
    log(f"target {target[0]}: {target[2]} ({'met' if target[3] else 'NOT met'}, target {target[1]})")
    return (headers, rows), (fpr_headers, fpr_rows), img, target, (len(fit), len(held)), time.time() - t0


def confident_errors(results, picked) -> int:
    return sum(r.verdict not in ("uncertain", None) and (r.verdict == "ai-generated") != bool(s.y)
               for r, s in zip(results, picked))


def stability_part(picked):
    rows, targets = [], []
    paths = [s.path for s in picked]
    for name in MODELS:
        plain_scanner, checked_scanner = Scanner(name, workers=1), Scanner(name, workers=1, stability=True)
        list(plain_scanner.scan_paths(paths[:8]))  # warm-up (imports, threads)
        t0 = time.time()
        plain = list(plain_scanner.scan_paths(paths))
        t_plain = time.time() - t0
        t0 = time.time()
        checked = list(checked_scanner.scan_paths(paths))
        t_checked = time.time() - t0
        e0, e1 = confident_errors(plain, picked), confident_errors(checked, picked)
        unc0 = sum(r.verdict == "uncertain" for r in plain)
        unc1 = sum(r.verdict == "uncertain" for r in checked)
        cut = 1 - e1 / e0 if e0 else 0.0
        rows.append([name, str(len(paths)), str(e0), str(e1), f"{100 * cut:.0f}%", str(unc0), str(unc1),
                     f"{t_checked / t_plain:.2f}x"])
        targets.append((f"{name}: confident errors cut by --stability", ">= 33% at <= 3x time",
                        f"{100 * cut:.0f}% at {t_checked / t_plain:.2f}x", cut >= 1 / 3 and t_checked / t_plain <= 3))
    headers = ["model", "images", "confident errors", "with --stability", "cut", "uncertain", "uncertain with --stability",
               "time"]
    log(_md_table(headers, rows))
    for t in targets:
        log(f"target {t[0]}: {t[2]} ({'met' if t[3] else 'NOT met'}, target {t[1]})")
    return (headers, rows), targets


ATTACKS = ["fgsm:eps=2/255", "pgd:eps=1/255,steps=5", "pgd:eps=2/255,steps=5", "pgd:eps=4/255,steps=5",
           "pgd:eps=8/255,steps=5", "pgd:norm=l2,eps=0.5,steps=5"]


def attack_part(picked, n_images: int, seed: int, attack_model: str, adversarial_models: list[str], val):
    from synthscan.evaluate.adversarial import parse_attack
    from synthscan.evaluate.attack_eval import run_attacks

    t0 = time.time()
    if n_images > 0:
        rng = random.Random(seed)
        fakes, reals = [s for s in picked if s.y], [s for s in picked if not s.y]
        chosen = rng.sample(fakes, min(n_images // 2, len(fakes))) + rng.sample(reals, min(n_images // 2, len(reals)))
    else:  # the whole split: small generators no longer weigh as much as large ones, and one image moves little
        chosen = list(val)
    source = Scanner(attack_model, workers=1)
    rows, _ = run_attacks(source, [Scanner("synthscan-default", workers=1)], chosen,
                          [parse_attack(a) for a in ATTACKS], seed=seed)
    for adversarial_model in adversarial_models:
        trained = Scanner(adversarial_model, workers=1)
        adv_rows, _ = run_attacks(trained, [], chosen, [parse_attack(a) for a in ATTACKS], seed=seed)
        rows += adv_rows
    fmt = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
    table = [[r.attack, r.source, r.target, r.kind, fmt(r.success_fake), fmt(r.success_real), fmt(r.ap_clean), fmt(r.ap_attacked)]
             for r in rows]
    headers = ["attack", "crafted on", "scored by", "kind", "fakes evaded", "reals accused", "AP clean", "AP attacked"]
    log(f"attacks on {len(chosen)} images ({sum(s.y for s in chosen)} fake)")
    log(_md_table(headers, table))
    policy = source.model.input_policy
    crafted = (source.model.name, f"the image resized to {policy.crop_size} px" if policy.mode == "resize"
               else f"its first {policy.crop_size} px tile")
    pgd2 = [r for r in rows if r.attack == "pgd:linf,eps=2/255,steps=5" and r.kind == "white-box"]
    measured = f"{fmt(pgd2[0].success_fake)} / {fmt(pgd2[0].success_real)}"
    if not adversarial_models:
        target = (f"PGD eps=2/255 success on {source.model.name} (fakes evaded / reals accused)",
                  "measured; halved by adversarial training", f"{measured}; adversarial training not run", False)
        return (headers, table), [target], crafted, (len(chosen), sum(s.y for s in chosen)), time.time() - t0
    base, *advs = pgd2
    ap_base = whole_split_ap(attack_model, val)
    targets = []
    for adversarial_model, adv in zip(adversarial_models, advs):  # one pair of target rows per trained model
        halved = all(a is not None and b is not None and a <= b / 2 for a, b in
                     ((adv.success_fake, base.success_fake), (adv.success_real, base.success_real)))
        ap_adv = whole_split_ap(adversarial_model, val)
        log(f"clean AP on the whole {len(val)}-image split: {attack_model} {ap_base:.3f}, {adversarial_model} {ap_adv:.3f}")
        targets += [(f"PGD eps=2/255 success, {source.model.name} -> {adv.source} (fakes evaded / reals accused)",
                     "halved", f"{measured} -> {fmt(adv.success_fake)} / {fmt(adv.success_real)}", halved),
                    (f"clean AP loss of {adv.source} (whole split, points)", "<= 2",
                     f"{100 * (ap_base - ap_adv):.1f} ({ap_base:.3f} -> {ap_adv:.3f})", ap_base - ap_adv <= 0.02)]
    return (headers, table), targets, crafted, (len(chosen), sum(s.y for s in chosen)), time.time() - t0


def whole_split_ap(model: str, samples) -> float:
    results = list(Scanner(model, workers=1).scan_paths([s.path for s in samples]))
    return binary_metrics(np.array([s.y for s in samples]), np.array([r.p_fake for r in results]), 0.5)["ap"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/synthbench/manifest.csv")
    ap.add_argument("--split", default="val")
    ap.add_argument("--track", default="256")
    ap.add_argument("--per-generator", type=int, default=4, help="images per generator / real source in the sample")
    ap.add_argument("--attack-images", type=int, default=48,
                    help="images of the sample (half fake) attacked in part 4; 0: every image of the split")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="docs/robustness.md")
    ap.add_argument("--attack-model", default="synthscan-npr",
                    help="the differentiable model (name or .json) attacks are crafted on, white-box")
    ap.add_argument("--adversarial-model", action="append", default=[],
                    help="that model trained further adversarially (.json), attacked beside it (repeatable)")
    ap.add_argument("--sweep-model", action="append", default=[], help="another model (.json) to sweep (repeatable)")
    args = ap.parse_args()
    if not Path(args.data).exists():
        print(f"{args.data} not found: this benchmark needs synthbench", file=sys.stderr)
        return 2
    out = Path(args.out)
    plots_dir = out.with_suffix("")
    plots_dir.mkdir(parents=True, exist_ok=True)
    val = read_dataset(args.data, split=args.split, track=args.track)
    picked = sample(val, args.per_generator, args.seed)
    n_fake = sum(s.y for s in picked)
    log(f"sample: {len(picked)} of {len(val)} {args.split} images ({n_fake} fake, {len(picked) - n_fake} real), "
        f"at most {args.per_generator} per generator / real source, seed {args.seed}")
    sweep, sweep_rows, sweep_imgs, sweep_targets, t_sweep = sweep_part(picked, args.seed, plots_dir, args.sweep_model)
    cal, fpr, rel_img, cal_target, (n_fit, n_held), t_cal = calibration_part(val, plots_dir)
    stab, stab_targets = stability_part(picked)
    attacks, attack_targets, (attack_name, attack_input), (n_attacked, n_attacked_fake), t_attack = attack_part(
        picked, args.attack_images, args.seed, args.attack_model, args.adversarial_model, val)

    rel = lambda p: p.relative_to(out.parent).as_posix()  # noqa: E731
    targets = sweep_targets + [cal_target] + stab_targets + attack_targets
    cmd = "python benchmarks/robustness.py " + " ".join(sys.argv[1:])
    doc = [
        "# Robustness of the bundled models",
        f"Produced by `{cmd}` ({platform.processor() or platform.machine()}, "
        f"{time.strftime('%Y-%m-%d')}). Every number below is printed by that command.",
        f"**Sample** (sweep and stability): {len(picked)} of the {len(val)} synthbench {args.split} images "
        f"(track {args.track}; {n_fake} fake, {len(picked) - n_fake} real), at most {args.per_generator} per "
        f"generator or real source, seeded ({args.seed}). Generators with few val images weigh as much as "
        "large ones, so these numbers differ from whole-split ones. Calibration uses the whole split.",
        "## Targets (issue 14)",
        _md_table(["target", "wanted", "measured", "met"], [[a, b, c, "yes" if d else "**no**"] for a, b, c, d in targets]),
        f"## 1. Perturbation sweep ({t_sweep / 60:.1f} min)",
        "Accuracies at each model's shipped threshold; Δ is balanced accuracy minus the clean value.",
        _md_table(HEADERS, sweep_rows),
        *[f"![{p.stem}]({rel(p)})" for p in sweep_imgs],
        f"## 2. Calibration ({t_cal / 60:.1f} min)",
        f"Val split cut in two by path hash: fitted on half A ({n_fit} images), measured on half B "
        f"({n_held} images) that no fit saw. The shipped calibration was fitted on all of val, so its row "
        "is not an independent measure.",
        _md_table(*cal),
        f"Threshold chosen on half A for a {TARGET_FPR:.0%} real-photo false-positive rate:",
        _md_table(*fpr),
        f"![reliability]({rel(rel_img)})",
        "## 3. Stability-checked verdicts",
        "Confident errors: wrong verdicts outside the uncertain band, on the clean sample. Time: "
        "`--stability` scan time over the plain scan time (1 decoding worker).",
        _md_table(*stab),
        f"## 4. Adversarial attacks ({t_attack / 60:.1f} min)",
        (f"{n_attacked} images of the sample (half fake)." if args.attack_images > 0 else
         f"Every image of the {args.split} split ({n_attacked}, {n_attacked_fake} fake).")
        + f" Crafted white-box on {attack_name}'s input "
        f"({attack_input}), saved as 8-bit pixels, scored by {attack_name} (white-box) and by "
        "synthscan-default (transfer: the black-box attack used for this gradient-free model). Fakes evaded: "
        "share of fakes detected clean that pass as real attacked; reals accused: share of real photos "
        "passed clean that are called fake attacked. "
        + (f"Rows with source {', '.join(dict.fromkeys(row[1] for row in attacks[1] if row[1] != attack_name))}: the same attacks "
           "white-box on those adversarially trained models (training commands in their JSONs; both targets must "
           "hold for one model)." if args.adversarial_model else
           "Adversarial training (`synthscan train --adversarial`) was not measured in this run "
           "(`--adversarial-model` names a trained model)."),
        _md_table(*attacks),
    ]
    out.write_text("\n\n".join(doc) + "\n")
    out.with_suffix(".json").write_text(json.dumps({
        "sweep": sweep.model_dump(mode="json"), "calibration": cal[1], "target_fpr": fpr[1], "stability": stab[1], "attacks": attacks[1],
        "targets": [list(t) for t in targets], "command": cmd}, indent=1, default=str) + "\n")
    log(f"wrote {out}, {out.with_suffix('.json')} and plots in {plots_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

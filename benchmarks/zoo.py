"""Compare the detector zoo on synthbench: one command, one table (docs/zoo.md + docs/zoo.json).

For every detector that trains from scratch, on each track (256 and 32):
- a model trained on the train split, scored on the val split (AP, balanced accuracy at its own
  calibrated threshold, ROC-AUC);
- leave-one-family-out (LOFO): a model trained without GANs, scored on GAN fakes (train + val
  splits, never seen) against val real photos; the same without diffusion models;
- parameters, CPU images/second (forward only, batch 32 at the detector's input size) and
  training seconds.
Plus each report's ablation where it defines one (NPR variants; FreqNet/wavelet variants).

    python benchmarks/zoo.py --data ../shared/synthbench/manifest.csv --budget quick   # < 20 min, 2 cores
    python benchmarks/zoo.py --data ../shared/synthbench/manifest.csv --budget converge  # hours, 2 cores
    python benchmarks/zoo.py --data ../shared/synthbench/manifest.csv --budget full    # longer still

The quick budget trains on a seeded subset (per class) for a few epochs: it ranks detectors
roughly, it does not measure what they reach. Runs are kept under --runs and reused, so an
interrupted benchmark resumes. Needs ../shared/synthbench: a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from synthscan.data.datasets import Sample, read_manifest
from synthscan.detectors.base import CalibratedModel
from synthscan.detectors.registry import get_detector_class, list_detectors
from synthscan.evaluate.metrics import binary_metrics
from synthscan.scanning import Scanner
from synthscan.train.config import resolve_config
from synthscan.train.recipe import train_on_samples

# Detectors trained from scratch, in the order of the table. Detectors built on pretrained
# backbones (rine, backbone) need weights this machine cannot download: they are not benchmarked.
FROM_SCRATCH = ["npr", "spectral-dae", "freqnet-wavelet", "spai-style", "texture-gbm", "resnet18-scratch", "lenet", "mlp"]
ABLATIONS = {
    "npr": {
        "one scale (no fusion)": {"multiscale_fusion": False},
        "no channel attention": {"channel_attention": False},
        "+ spatial attention": {"spatial_attention": True},
    },
    "freqnet-wavelet": {
        "FreqNet only": {"wavelet": False},
        "wavelet only": {"freqnet": False},
    },
    # Not a report's ablation: report 002's texture features against the default model's forensic ones.
    "texture-gbm": {
        "forensic features (default recipe)": {"features": ["residual", "spam", "chroma_spam", "grid_phase", "spectrum",
                                                            "colour"]},
    },
}
FAMILIES = ("gan", "diffusion")
BUDGETS = {
    # per-class caps on train and val images, the epochs (None: the detector's config) and a cap
    # on training crops (None: the detector's config)
    "quick": {"train_per_class": 250, "val_per_class": 100, "epochs": 2, "max_crop": 128, "ablations_on": ("256",)},
    "full": {"train_per_class": None, "val_per_class": None, "epochs": None, "max_crop": None,
             "ablations_on": ("256", "32")},
    # Every image, and each detector's own epochs up to 12 (the quick table's CNNs sit near chance
    # after 2): hours on 2 cores. The "best epoch" column shows whether a model was still improving.
    "converge": {"train_per_class": None, "val_per_class": None, "epochs": None, "max_epochs": 12, "max_crop": 128,
                 "ablations_on": ()},
}


def subsample(samples: list[Sample], per_class: int | None, seed: int = 0) -> list[Sample]:
    if per_class is None:
        return samples
    rng = np.random.default_rng(seed)
    out = []
    for label in ("real", "fake"):
        group = [s for s in samples if s.label == label]
        keep = rng.choice(len(group), size=min(per_class, len(group)), replace=False)
        out += [group[i] for i in sorted(keep)]
    return out


def track_overrides(detector: str, track: str, detector_config: dict) -> tuple[dict, dict]:
    """On the 32-px track, tile detectors see 32-px tiles (padding a 32-px image to 256 would
    hide the image in its own mirror copies)."""
    if track != "32":
        return detector_config, {}
    policy = get_detector_class(detector).Config().input
    if policy.mode != "tiles":
        return detector_config, {}
    return {**detector_config, "input": {**policy.model_dump(), "crop_size": 32}}, {"crop_size": 32}


def scores(model: CalibratedModel, samples: list[Sample]) -> np.ndarray:
    results = Scanner(model, workers=2).scan_paths([s.path for s in samples])
    return np.array([r.p_fake if r.ok else np.nan for r in results])


def images_per_second(model: CalibratedModel) -> float:
    size = model.input_policy.crop_size
    batch = torch.rand(32, 3, size, size)
    model.logits(batch)  # warm-up
    start = time.perf_counter()
    for _ in range(3):
        model.logits(batch)
    return 96 / (time.perf_counter() - start)


def train_or_load(detector: str, variant: dict, track: str, left_out: str | None, train, val, budget, runs: Path):
    tag = f"no-{left_out}" if left_out else "full"
    out = runs / track / f"{detector}{variant['tag']}-{tag}"
    name = f"{detector}{variant['tag']}-{tag}"
    if (out / f"{name}.json").exists():
        return CalibratedModel.load(out / f"{name}.json")
    detector_config, train_config = resolve_config(
        detector, overrides={"detector": variant["config"], "train": {"epochs": budget["epochs"]}}
    )
    if budget.get("max_epochs"):
        train_config.epochs = min(train_config.epochs, budget["max_epochs"])
    detector_config, augment = track_overrides(detector, track, detector_config)
    if augment:
        train_config.augment.crop_size = augment["crop_size"]
    if budget["max_crop"]:
        train_config.augment.crop_size = min(train_config.augment.crop_size, budget["max_crop"])
    keep = [s for s in train if s.family != left_out]
    keep_val = [s for s in val if s.family != left_out]
    return train_on_samples(detector, keep, keep_val, out, name=name, train_config=train_config,
                            detector_config=detector_config, progress=lambda m: print(f"  [{name}] {m}", flush=True))


def rnd(x):
    return None if x is None else round(float(x), 4)


def run_row(detector: str, variant: dict, track: str, samples: list[Sample], budget: dict, runs: Path,
            with_lofo: bool) -> dict:
    train = subsample([s for s in samples if s.split == "train"], budget["train_per_class"])
    val = subsample([s for s in samples if s.split == "val"], budget["val_per_class"], seed=1)
    val_reals = [s for s in val if s.label == "real"]
    model = train_or_load(detector, variant, track, None, train, val, budget, runs)
    p = scores(model, val)
    m = binary_metrics([s.y for s in val], p, model.info.decision.threshold)
    row = {
        "detector": detector + (f" ({variant['label']})" if variant["label"] else ""),
        "track": track,
        "val_ap": rnd(m["ap"]),
        "val_balanced_accuracy": rnd(m["balanced_accuracy"]),
        "val_auc": rnd(m["roc_auc"]),
        "params": sum(p.numel() for p in model.detector.parameters()),
        "images_per_second": round(images_per_second(model), 1),
        "train_seconds": model.info.training.get("seconds"),
        "best_epoch": (f"{model.info.training['best_epoch']} of {model.info.training['epochs_run']}"
                       if "epochs_run" in model.info.training else None),  # None: fitted in one shot
    }
    for family in FAMILIES if with_lofo else ():
        left_out_model = train_or_load(detector, variant, track, family, train, val, budget, runs)
        test = [s for s in samples if s.family == family]
        test = subsample(test, budget["val_per_class"], seed=2) + val_reals
        m = binary_metrics([s.y for s in test], scores(left_out_model, test), left_out_model.info.decision.threshold)
        row[f"lofo_{family}_ap"] = rnd(m["ap"])
        row[f"lofo_{family}_auc"] = rnd(m["roc_auc"])
    print(json.dumps(row), flush=True)
    return row


def to_markdown(rows: list[dict], header: dict) -> str:
    cols = ["detector", "track", "val_ap", "val_balanced_accuracy", "val_auc", "lofo_gan_ap", "lofo_diffusion_ap",
            "params", "images_per_second", "train_seconds", "best_epoch"]
    names = ["detector", "track", "val AP", "val bal. acc", "val AUC", "LOFO GAN AP", "LOFO diffusion AP",
             "params", "CPU img/s", "train s", "best epoch"]
    lines = [
        "# Detector zoo on synthbench",
        "",
        f"Made by `{header['command']}` on {header['date']} ({header['machine']}). Budget `{header['budget']}`: "
        f"{header['budget_note']}",
        "",
        "LOFO: trained without that family, scored on its fakes against val real photos (chance AP is the "
        "fraction of fakes in that test set). A blank cell: not measured in this budget.",
        "",
        "| " + " | ".join(names) + " |",
        "|" + "---|" * len(names),
    ]
    for r in rows:
        lines.append("| " + " | ".join("" if r.get(c) is None else str(r[c]) for c in cols) + " |")
    if header.get("skipped"):
        lines += ["", "Not benchmarked: " + "; ".join(header["skipped"])]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/synthbench/manifest.csv")
    ap.add_argument("--budget", choices=list(BUDGETS), default="quick")
    ap.add_argument("--tracks", nargs="+", default=["256", "32"])
    ap.add_argument("--detectors", nargs="+", default=None, help="default: every registered from-scratch detector")
    ap.add_argument("--runs", type=Path, default=Path("runs/zoo"))
    ap.add_argument("--out", type=Path, default=Path("docs/zoo"))
    args = ap.parse_args()

    budget = BUDGETS[args.budget]
    registered = set(list_detectors())
    detectors = args.detectors or [d for d in FROM_SCRATCH if d in registered]
    skipped = [f"{d} (not registered)" for d in FROM_SCRATCH if d not in registered and args.detectors is None]
    skipped += [f"{d} (pretrained backbone; weights cannot be downloaded here)" for d in ("rine", "backbone") if d in registered]
    runs = args.runs / args.budget
    start = time.time()
    rows = []
    for track in args.tracks:
        samples = read_manifest(args.data, track=track)
        for detector in detectors:
            print(f"== {detector} on track {track}", flush=True)
            try:
                rows.append(run_row(detector, {"tag": "", "label": "", "config": {}}, track, samples, budget, runs, True))
            except Exception as exc:  # one detector failing must not lose the others' rows
                skipped.append(f"{detector} on track {track} (failed: {type(exc).__name__}: {exc})")
                print(f"   failed: {exc!r}", flush=True)
                continue
            if track not in budget["ablations_on"]:
                continue
            fields = get_detector_class(detector).Config.model_fields
            for label, change in ABLATIONS.get(detector, {}).items():
                if not set(change) <= set(fields):
                    skipped.append(f"{detector} ablation '{label}' (no such config field)")
                    continue
                tag = "-" + "-".join(f"{k}={'+'.join(v) if isinstance(v, list) else v}" for k, v in change.items())
                rows.append(run_row(detector, {"tag": tag, "label": label, "config": change}, track, samples,
                                    budget, runs, False))
    header = {
        "command": shlex.join(["python", "benchmarks/zoo.py", *sys.argv[1:]]),
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} with "
                   f"{torch.get_num_threads()} threads",
        "budget": args.budget,
        "budget_note": ("train on at most {train_per_class} images per class for {epochs} epoch(s) on crops of at most "
                        "{max_crop} px; val and LOFO tests capped at {val_per_class} per class".format(**budget)
                        if args.budget == "quick" else "full splits, epochs from each detector's config"
                        + (f" (at most {budget['max_epochs']}), crops of at most {budget['max_crop']} px"
                           if budget.get("max_epochs") else "")),
        "minutes": round((time.time() - start) / 60, 1),
        "skipped": skipped,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"header": header, "rows": rows}, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(to_markdown(rows, header))
    print(f"wrote {args.out}.md and .json in {header['minutes']} min")


if __name__ == "__main__":
    main()

"""Training loop shared by every trainable detector.

`fit` trains on labelled samples, scores the validation samples after every epoch the way a scan
would (tiles, mean logit), keeps the epoch with the best validation AP (early stopping), writes
a checkpoint each epoch so an interrupted run resumes, and logs one JSON line per epoch.
Sampling balances real against fake and damps over-represented generators (weight
1/sqrt(images of that generator)), because the judge is unseen generators, not the frequent ones.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from sklearn.metrics import average_precision_score

from synthscan.data.augment import AugmentConfig, augment
from synthscan.data.datasets import Sample, check_two_classes
from synthscan.detectors.base import CalibratedModel, Detector
from synthscan.detectors.tiling import make_tiles, to_tensor_batch
from synthscan.evaluate.adversarial import adversarial_batch, parse_attack
from synthscan.io import load_image


@dataclass
class TrainConfig:
    epochs: int = 12
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 4  # epochs without a better val AP before stopping
    seed: int = 0
    pretrain_epochs: int = 3  # per real-only stage (spectral-dae's SR network and DAE, spai-style's ViT)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # Adversarial training: e.g. "pgd:eps=2/255,steps=5" (see synthscan.evaluate.adversarial).
    adversarial: str | None = None


def load_rgb(path: str) -> np.ndarray:
    """Decode exactly as a scan does (orientation, mode rules, limits)."""
    return load_image(path).rgb


def sample_weights(samples: list[Sample]) -> np.ndarray:
    per_generator = Counter(s.generator for s in samples)
    w = np.array([1.0 / np.sqrt(per_generator[s.generator]) for s in samples])
    y = np.array([s.y for s in samples])
    for label in (0, 1):  # equal total mass for real and fake
        w[y == label] /= w[y == label].sum()
    return w / w.sum()


def steps_per_epoch(n_images: int, cfg: TrainConfig) -> int:
    return max(1, n_images // cfg.batch_size)  # sampling is with replacement: a small set still trains


def _batches(images, labels, weights, cfg: TrainConfig, rng: np.random.Generator):
    for _ in range(steps_per_epoch(len(images), cfg)):
        idx = rng.choice(len(images), size=cfg.batch_size, p=weights)
        x = np.stack([augment(images[i], cfg.augment, rng) for i in idx])
        yield to_tensor_batch(x), torch.tensor(labels[idx], dtype=torch.float32)


def _pretrain(detector: Detector, stage: str, images, labels, cfg: TrainConfig, rng, log):
    """Train `detector.<stage>` on real photos only with `detector.stage_loss`, then freeze it."""
    module = getattr(detector, stage)
    reals = [img for img, y in zip(images, labels) if y == 0]
    weights = np.full(len(reals), 1.0 / len(reals))
    opt = torch.optim.Adam(module.parameters(), lr=cfg.lr)
    detector.train()
    for epoch in range(cfg.pretrain_epochs):
        losses = []
        for x, _ in _batches(reals, np.zeros(len(reals)), weights, cfg, rng):
            loss = detector.stage_loss(stage, x.to(next(module.parameters()).device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        log({"stage": stage, "epoch": epoch + 1, "loss": float(np.mean(losses))})
    for p in module.parameters():
        p.requires_grad_(False)


def fit(
    detector: Detector,
    train: list[Sample],
    val: list[Sample],
    cfg: TrainConfig,
    out_dir: str | Path,
    progress: Callable[[str], None] = print,
    show_steps: bool = False,
    pretrained: bool = False,
) -> tuple[Detector, dict]:
    """Train `detector` in place; returns it (best epoch's weights) and a summary dict.
    pretrained: its real-only stages are already trained (a model to train further): they stay frozen."""
    check_two_classes(train, "training set")
    check_two_classes(val, "validation set")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)  # seeded runs repeat where torch allows
    rng = np.random.default_rng(cfg.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    detector.to(device)

    def log(record: dict) -> None:
        with (out_dir / "log.jsonl").open("a") as f:
            f.write(json.dumps(record) + "\n")
        progress(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))

    t0 = time.time()
    train_images = [load_rgb(s.path) for s in train]
    val_images = [load_rgb(s.path) for s in val]
    labels = np.array([s.y for s in train])
    val_y = np.array([s.y for s in val])
    weights = sample_weights(train)
    policy = detector.input_policy
    if policy.mode == "resize":  # train on what a scan sees: the whole image at the detector's size
        train_images = [make_tiles(img, policy).crops[0] for img in train_images]
        cfg = replace(cfg, augment=replace(cfg.augment, crop_size=policy.crop_size))
    progress(f"loaded {len(train)} train / {len(val)} val images in {time.time() - t0:.0f}s")

    ckpt_path = out_dir / "checkpoint.pt"
    state = {"epoch": 0, "best_ap": -1.0, "best_epoch": 0, "stale": 0, "pretrained": pretrained}
    opt = torch.optim.AdamW(detector.trainable_parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=False, map_location=device)
        detector.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        sched.load_state_dict(ckpt["sched"])
        state = ckpt["state"]
        rng = np.random.default_rng([cfg.seed, state["epoch"]])
        torch.manual_seed(cfg.seed + state["epoch"])
        progress(f"resumed from {ckpt_path} after epoch {state['epoch']}")
    if state["pretrained"]:
        for stage in detector.real_only_stages():
            getattr(detector, stage).requires_grad_(False)

    if detector.real_only_stages() and not state["pretrained"]:
        for stage in detector.real_only_stages():
            _pretrain(detector, stage, train_images, labels, cfg, rng, log)
        state["pretrained"] = True

    n_fake, n_real = labels.sum(), len(labels) - labels.sum()
    adv_spec = parse_attack(cfg.adversarial) if cfg.adversarial else None
    while state["epoch"] < cfg.epochs and state["stale"] < cfg.patience:
        detector.train()
        for stage in detector.real_only_stages():
            getattr(detector, stage).eval()  # frozen stages: no dropout noise in the residual
        losses, t_epoch = [], time.time()
        batches = _batches(train_images, labels, weights, cfg, rng)
        if show_steps:  # a bar on a terminal; logs and non-terminals get one line per epoch
            from rich.console import Console
            from rich.progress import track

            batches = track(batches, total=steps_per_epoch(len(train_images), cfg), transient=True,
                            description=f"epoch {state['epoch'] + 1}/{cfg.epochs}", console=Console(stderr=True))
        for x, y in batches:
            x, y = x.to(device), y.to(device)
            if adv_spec is not None:
                x = adversarial_batch(detector, x, y, adv_spec)
            loss = detector.training_loss(x, y)  # BCE unless the detector has its own objective
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        sched.step()
        val_logits = [s.raw_logit for s in CalibratedModel.uncalibrated(detector).score_many(val_images, batch_size=64)]
        val_ap = float(average_precision_score(val_y, val_logits))
        state["epoch"] += 1
        if val_ap > state["best_ap"]:
            state.update(best_ap=val_ap, best_epoch=state["epoch"], stale=0)
            torch.save(detector.state_dict(), out_dir / "best.pt")
        else:
            state["stale"] += 1
        log({"epoch": state["epoch"], "loss": float(np.mean(losses)), "val_ap": val_ap,
             "seconds": round(time.time() - t_epoch, 1)})
        torch.save({"model": detector.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "state": state}, ckpt_path)

    detector.load_state_dict(torch.load(out_dir / "best.pt", weights_only=True, map_location=device))
    detector.cpu()
    summary = {"best_epoch": state["best_epoch"], "best_val_ap": state["best_ap"], "epochs_run": state["epoch"],
               "train_images": len(train), "train_real": int(n_real), "train_fake": int(n_fake),
               "seconds": round(time.time() - t0, 1), "config": asdict(cfg)}
    return detector.eval(), summary

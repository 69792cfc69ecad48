"""`synthscan train --engine ray`: data-parallel training with Ray Train's TorchTrainer (DDP).

Every worker holds a copy of the detector wrapped in DistributedDataParallel
(`ray.train.torch.prepare_model`), decodes its own 1/N of the training images, and samples them as
the single-machine trainer does (real/fake balanced, frequent generators damped, same
augmentations); gradients are averaged across workers each step. After each epoch the first worker
scores the validation images as a scan would and reports a checkpoint (model, optimiser,
scheduler, best weights so far) to the storage path. Running the same command again with the same
--out (or --storage-path) and name resumes from the last checkpoint: Ray Train V2 restores a run
whose name and storage path match. The driver then calibrates the best epoch on validation and
saves the model exactly as `synthscan train` does.

Networks trained by plain binary cross-entropy only: texture-gbm is fitted by gradient boosting,
and detectors with their own objective or real-only pre-training stages keep the single-machine
trainer.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from synthscan.data.augment import AugmentConfig
from synthscan.data.datasets import Sample
from synthscan.train.trainer import TrainConfig


def check_trainable(detector_name: str) -> None:
    """Raise ValueError when DETECTOR cannot be trained by DDP on binary cross-entropy."""
    from synthscan.detectors.base import Detector
    from synthscan.detectors.registry import get_detector_class

    cls = get_detector_class(detector_name)  # class attributes only: building one may download weights
    if cls.fits_in_one_shot:
        raise ValueError(f"{detector_name} is fitted in one shot, not by SGD: train it without --engine ray")
    # DDP syncs gradients only through the wrapped module's forward, so only plain BCE on forward() runs here.
    if cls.training_loss is not Detector.training_loss or cls.real_only_stages is not Detector.real_only_stages:
        raise ValueError(f"{detector_name} has its own training objective or stages: train it without --engine ray")


def _train_loop(config: dict) -> None:
    """Runs on every Ray Train worker."""
    import ray.train
    import ray.train.torch
    import torch
    import torch.nn.functional as F
    from sklearn.metrics import average_precision_score

    from synthscan.data.augment import augment
    from synthscan.detectors.base import CalibratedModel
    from synthscan.detectors.registry import get_detector_class
    from synthscan.detectors.tiling import to_tensor_batch
    from synthscan.train.trainer import load_rgb, sample_weights

    cfg = TrainConfig(**{**config["train"], "augment": AugmentConfig(**config["train"]["augment"])})
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    torch.manual_seed(cfg.seed)  # same initial weights on every worker (DDP also broadcasts rank 0's)
    cls = get_detector_class(config["detector"])
    detector = cls(cls.Config.model_validate(config["detector_config"]))
    mine = [Sample(**s) for s in config["train_samples"][rank::world]]
    images, labels = [load_rgb(s.path) for s in mine], np.array([s.y for s in mine])
    weights = sample_weights(mine)
    val = [Sample(**s) for s in config["val_samples"]] if rank == 0 else []
    val_images, val_y = [load_rgb(s.path) for s in val], np.array([s.y for s in val])

    model = ray.train.torch.prepare_model(detector)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    state = {"epoch": 0, "best_ap": -1.0, "best_epoch": 0, "stale": 0, "resumed_from_epoch": None}
    best = {k: v.detach().cpu().clone() for k, v in detector.state_dict().items()}
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as folder:
            saved = torch.load(Path(folder) / "state.pt", weights_only=False, map_location="cpu")
        detector.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        sched.load_state_dict(saved["sched"])
        state, best = saved["state"], saved["best"]
        state["resumed_from_epoch"] = state["epoch"]
    # Same number of steps on every worker (DDP needs it): one epoch ~ one pass over all images.
    steps = max(1, config["n_train"] // (cfg.batch_size * world))
    device = next(detector.parameters()).device
    while state["epoch"] < cfg.epochs and state["stale"] < cfg.patience:
        rng = np.random.default_rng([cfg.seed, rank, state["epoch"]])
        model.train()
        losses = []
        for _ in range(steps):
            idx = rng.choice(len(images), size=cfg.batch_size, p=weights)
            x = to_tensor_batch(np.stack([augment(images[i], cfg.augment, rng) for i in idx])).to(device)
            y = torch.tensor(labels[idx], dtype=torch.float32, device=device)
            loss = F.binary_cross_entropy_with_logits(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        sched.step()
        state["epoch"] += 1
        metrics = {"epoch": state["epoch"], "loss": float(np.mean(losses))}
        with tempfile.TemporaryDirectory() as folder:
            report_checkpoint = None
            if rank == 0:
                val_logits = [s.raw_logit for s in CalibratedModel.uncalibrated(detector).score_many(val_images)]
                val_ap = float(average_precision_score(val_y, val_logits))
                if val_ap > state["best_ap"]:
                    state.update(best_ap=val_ap, best_epoch=state["epoch"], stale=0)
                    best = {k: v.detach().cpu().clone() for k, v in detector.state_dict().items()}
                else:
                    state["stale"] += 1
                metrics["val_ap"] = val_ap
                torch.save({"model": detector.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                            "state": state, "best": best}, Path(folder) / "state.pt")
                report_checkpoint = ray.train.Checkpoint.from_directory(folder)
            ray.train.report(metrics, checkpoint=report_checkpoint)
        # Every worker must agree on stopping early: rank 0's decision is broadcast.
        stop = torch.tensor([state["stale"] >= cfg.patience], dtype=torch.int32)
        if world > 1:
            torch.distributed.broadcast(stop, src=0)
        state["stale"] = cfg.patience if stop.item() else state["stale"]


def train_on_ray(
    detector_name: str,
    train: list[Sample],
    val: list[Sample],
    out: str | Path,
    *,
    name: str,
    version: str = "0.1.0",
    num_workers: int = 2,
    use_gpu: bool = False,
    storage_path: str | None = None,
    train_config: TrainConfig | None = None,
    detector_config: dict | None = None,
    progress: Callable[[str], None] = print,
    record: dict | None = None,
):
    """Train on Ray, calibrate on `val`, save `out/NAME.json` + `.safetensors`; returns the model."""
    import torch
    from ray.train import CheckpointConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from synthscan.detectors.registry import get_detector_class
    from synthscan.train.recipe import calibrate_and_save, check_training_data

    check_trainable(detector_name)
    check_training_data(train, val, progress)
    cfg = train_config or TrainConfig()
    out = Path(out).resolve()
    storage = storage_path or str(out / "ray")

    def for_workers(samples: list[Sample]) -> list[dict]:
        # Ray Train workers run in their own working directory: relative paths must not reach them.
        return [asdict(s) | {"path": os.path.abspath(s.path)} for s in samples]

    trainer = TorchTrainer(
        _train_loop,
        train_loop_config={"detector": detector_name, "detector_config": detector_config or {}, "train": asdict(cfg),
                           "train_samples": for_workers(train), "val_samples": for_workers(val),
                           "n_train": len(train)},
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu),
        run_config=RunConfig(name=name, storage_path=storage, checkpoint_config=CheckpointConfig(num_to_keep=2)),
    )
    result = trainer.fit()
    with result.checkpoint.as_directory() as folder:
        saved = torch.load(Path(folder) / "state.pt", weights_only=False, map_location="cpu")
    cls = get_detector_class(detector_name)
    detector = cls(cls.Config.model_validate(detector_config or {}))
    detector.load_state_dict(saved["best"])
    state = saved["state"]
    summary = {"best_epoch": state["best_epoch"], "best_val_ap": state["best_ap"], "epochs_run": state["epoch"],
               "resumed_from_epoch": state["resumed_from_epoch"],
               "train_images": len(train), "engine": "ray", "num_workers": num_workers, "storage_path": storage,
               "config": asdict(cfg), **(record or {})}
    model = calibrate_and_save(detector, val, out / name, version=version, summary=summary)
    progress(f"saved {out / name}.json / .safetensors (best epoch {state['best_epoch']}, val AP {state['best_ap']:.4f})")
    return model

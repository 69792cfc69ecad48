"""From a dataset to a shipped model: train, calibrate on validation, save.

Calibration (Platt scaling by default; temperature or isotonic on request), the threshold (best
balanced accuracy, or a stated false-positive rate on real photos) and the uncertain band
(narrowest band outside which validation error <= 5%) are all chosen on the validation split.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from synthscan.data.datasets import DatasetError, Sample, check_two_classes, read_dataset
from synthscan.data.validate import validate_samples
from synthscan.detectors.base import CalibratedModel, ModelInfo
from synthscan.detectors.registry import get_detector_class, load_model
from synthscan.fit import command_line
from synthscan.train.calibrate import fit_decision, image_logits
from synthscan.train.trainer import TrainConfig, fit, load_rgb


def split_samples(
    data: str | Path, *, track: str | None, exclude_families: tuple[str, ...] = ()
) -> tuple[list[Sample], list[Sample]]:
    """Train and val samples; a folder dataset (no splits) is split 80/20 by a hash of the path."""
    samples = read_dataset(data, track=track)
    if any(s.split for s in samples):
        train = [s for s in samples if s.split == "train"]
        val = [s for s in samples if s.split == "val"]
    else:
        import zlib

        is_val = [zlib.crc32(s.path.encode()) % 5 == 0 for s in samples]
        train = [s for s, v in zip(samples, is_val) if not v]
        val = [s for s, v in zip(samples, is_val) if v]
    excluded = set(exclude_families)
    train = [s for s in train if s.family not in excluded]
    val = [s for s in val if s.family not in excluded]
    if not train or not val:
        found = ", ".join(sorted({s.split for s in samples} - {""})) or "none"
        raise DatasetError(f"{data}: empty train or val split after exclusions (splits found: {found})")
    return train, val


def calibrate(model: CalibratedModel, val: list[Sample], *, max_error: float = 0.05, method: str = "platt",
              target_fpr: float | None = None) -> dict:
    """Calibration `method` (platt, temperature, isotonic), threshold and band from `val`; see
    `synthscan.train.calibrate.fit_decision`."""
    logits = image_logits(model, val)
    y = np.array([s.y for s in val])
    return fit_decision(model, logits, y, method=method, target_fpr=target_fpr, max_error=max_error)


def train_detector(
    detector_name: str,
    data: str | Path,
    out: str | Path,
    *,
    name: str,
    version: str = "0.1.0",
    track: str | None = "256",
    exclude_families: tuple[str, ...] = (),
    train_config: TrainConfig | None = None,
    detector_config: dict | None = None,
    progress: Callable[[str], None] = print,
    calibration: dict | None = None,
    init: str | Path | None = None,
) -> CalibratedModel:
    """Train on DATA's train split (minus excluded families), calibrate on its val split, save.
    init: a trained model (name or path) to start from: its weights and detector settings."""
    train, val = split_samples(data, track=track, exclude_families=exclude_families)
    return train_on_samples(
        detector_name, train, val, out, name=name, version=version, train_config=train_config,
        detector_config=detector_config, progress=progress, calibration=calibration, init=init,
        record={"data": str(data), "track": track, "exclude_families": list(exclude_families)},
    )


def train_on_samples(
    detector_name: str,
    train: list[Sample],
    val: list[Sample],
    out: str | Path,
    *,
    name: str,
    version: str = "0.1.0",
    train_config: TrainConfig | None = None,
    detector_config: dict | None = None,
    progress: Callable[[str], None] = print,
    record: dict | None = None,
    calibration: dict | None = None,
    init: str | Path | None = None,
) -> CalibratedModel:
    """Train, keep the best epoch, calibrate on `val` (`calibration`: `calibrate` options), save `out/NAME.json` + `.safetensors`.
    init: start from this trained model (its weights and detector settings; `detector_config` is then not used)."""
    cls = get_detector_class(detector_name)
    detector = cls(cls.Config.model_validate(detector_config or {})) if init is None else initial_detector(init, detector_name)
    check_training_data(train, val, progress)
    cfg = train_config or TrainConfig()
    out = Path(out)
    if detector.fits_in_one_shot:  # fitted in one go, not by SGD (texture-gbm)
        t0 = time.time()
        summary = detector.fit_arrays((load_rgb(s.path) for s in train), [s.y for s in train])  # streamed
        summary.update(train_images=len(train), seconds=round(time.time() - t0, 1))
        progress(f"fitted {detector_name} on {len(train)} images in {summary['seconds']}s")
    else:
        detector, summary = fit(detector, train, val, cfg, out / "run", progress=progress, show_steps=sys.stderr.isatty(),
                                pretrained=init is not None)
    if init is not None:
        summary["init"] = str(init)
    model = calibrate_and_save(detector, val, out / name, version=version, summary={**summary, **(record or {})},
                               calibration=calibration)
    progress(f"saved {out / name}.json / .safetensors")
    return model


def initial_detector(init: str | Path, detector_name: str):
    """The detector of trained model `init`, to train further (its real-only stages stay as trained)."""
    detector = load_model(init).detector
    if detector.name != detector_name:
        raise ValueError(f"--init {init} is a {detector.name} model, not {detector_name}")
    if detector.fits_in_one_shot:
        raise ValueError(f"--init: {detector_name} is fitted in one go, not trained further; train it afresh")
    return detector


def check_training_data(train: list[Sample], val: list[Sample], progress: Callable[[str], None]) -> None:
    """Dataset problems surface here, before any training: a missing class, then unreadable files.
    Training decodes every file again; one extra decode per file is worth it for a bad file to
    fail now rather than hours into training."""
    check_two_classes(train, "training set")
    check_two_classes(val, "validation set")
    check = validate_samples(train + val)
    check.raise_if_failed()
    progress(check.summary())


def calibrate_and_save(detector, val: list[Sample], path: Path, *, version: str, summary: dict,
                       calibration: dict | None = None) -> CalibratedModel:
    """Calibrate a trained detector on `val`, record `summary` and the command line, save at `path`."""
    model = CalibratedModel(detector, ModelInfo(detector=detector.name, name=path.name, version=version))
    summary["calibration"] = calibrate(model, val, **(calibration or {}))
    summary.update(command=command_line(), trained=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    model.info.training = summary
    model.save(path)
    return model

"""Calibrating a model on labelled images: the calibration map, then the threshold and the
uncertain band, all from one calibration split.

The threshold maximises balanced accuracy, or, with `target_fpr`, is the lowest one that calls at
most that fraction of the real photos fake (a false accusation costs more than a miss). The band is
then the narrowest around it outside which the error rate is <= `max_error`; it only narrows what
is called fake, so the false-positive target still holds on the calibration split.

`recalibrate` refits a saved model: it splits the given images in two by a hash of the path, fits
on one part and reports ECE and the false-positive rate on the other, never used in the fit.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np

from synthscan.data.samples import Sample
from synthscan.detectors.base import CalibratedModel
from synthscan.evaluate.calibration import (
    Method,
    false_positive_rate,
    fit_calibration,
    threshold_for_fpr,
)
from synthscan.evaluate.metrics import binary_metrics, choose_threshold, choose_uncertain_band, expected_calibration_error
from synthscan.result import Decision
from synthscan.train.trainer import load_rgb


def image_logits(model: CalibratedModel, samples: list[Sample], batch_size: int = 64) -> np.ndarray:
    """Raw image logits (mean of the tiles'), what every calibration is fitted on: always the model's
    own head's, also for images a routed model would send to its re-compressed head (that head keeps
    its own calibration)."""
    images = [load_rgb(s.path) for s in samples]
    return np.array([s.raw_logit for s in model.score_many(images, batch_size=batch_size, route=False)])


def fit_decision(model: CalibratedModel, logits: np.ndarray, y: np.ndarray, *, method: Method = "platt",
                 target_fpr: float | None = None, max_error: float = 0.05, fitted_on: str = "val split") -> dict:
    """Fit calibration, threshold and band on (`logits`, `y`) and store them in `model.info`."""
    cal = fit_calibration(method, logits, y, fitted_on=fitted_on)
    p = cal.apply(logits)
    threshold = choose_threshold(y, p) if target_fpr is None else threshold_for_fpr(y, p, target_fpr)
    low, high = choose_uncertain_band(y, p, threshold, max_error=max_error)
    model.info.calibration = cal
    # Stored to 4 decimals; with an FPR target rounded up, so rounding never adds a false positive.
    t = round(threshold, 4) if target_fpr is None else math.ceil(threshold * 1e4) / 1e4
    model.info.decision = Decision(threshold=t, uncertain_low=min(round(low, 4), t), uncertain_high=max(round(high, 4), t))
    out: dict[str, Any] = {"method": method, "threshold": threshold, "band": [low, high]}
    if method != "isotonic":
        out.update(scale=cal.scale, bias=cal.bias)
    if target_fpr is not None:
        out["target_fpr"] = target_fpr
    return out


def holdout_split(samples: list[Sample], fraction: float) -> tuple[list[Sample], list[Sample]]:
    """(fit, held out): a path lands in the held-out part when its CRC32 falls in `fraction`."""
    held = [zlib.crc32(s.path.encode()) % 1000 < fraction * 1000 for s in samples]
    return [s for s, h in zip(samples, held) if not h], [s for s, h in zip(samples, held) if h]


def recalibrate(model: CalibratedModel, samples: list[Sample], *, method: Method = "platt",
                target_fpr: float | None = None, max_error: float = 0.05, holdout: float = 0.5,
                fitted_on: str = "calibration split") -> dict:
    """Refit `model`'s calibration and decision on part of `samples` and measure the rest.

    Returns the fit summary plus, for the held-out part, ECE before and after, the new
    false-positive rate at the new threshold and balanced accuracy; "curves" holds the held-out
    (y, p before, p after) for a reliability diagram."""
    fit, held = holdout_split(samples, holdout)
    logits = {id(s): z for s, z in zip(samples, image_logits(model, samples))}
    x_fit, y_fit = np.array([logits[id(s)] for s in fit]), np.array([s.y for s in fit])
    before = model.info.calibration.model_copy()
    summary = fit_decision(model, x_fit, y_fit, method=method, target_fpr=target_fpr, max_error=max_error,
                           fitted_on=fitted_on)
    summary.update(n_fit=len(fit), n_held_out=len(held))
    if held:
        x, y = np.array([logits[id(s)] for s in held]), np.array([s.y for s in held])
        p_old, p_new = before.apply(x), model.info.calibration.apply(x)
        t = model.info.decision.threshold
        summary["held_out"] = {
            "ece_before": expected_calibration_error(y, p_old), "ece_after": expected_calibration_error(y, p_new),
            "fpr": false_positive_rate(y, p_new, t),
            "balanced_accuracy": binary_metrics(y, p_new, t)["balanced_accuracy"],
        }
        summary["curves"] = (y, p_old, p_new)
    return summary

"""Calibration fits (Platt, temperature, isotonic), a threshold for a stated false-positive rate
on real photos, and reliability diagrams.

All fits take raw image logits (tiles averaged: `ImageScore.raw_logit` of
`CalibratedModel.score_many`, what a scan computes) and labels (1 = fake) and return a `Calibration` to store with the model; `Calibration.apply` maps logits to P(fake).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.isotonic import IsotonicRegression

from synthscan.detectors.base import Calibration
from synthscan.evaluate.metrics import _above, _check, fit_platt

Method = Literal["platt", "temperature", "isotonic"]
METHODS: tuple[str, ...] = ("platt", "temperature", "isotonic")
# Isotonic fits reach 0 and 1 on separable data; a verdict is never that certain.
ISOTONIC_CLIP = 1e-3


def fit_temperature(logits: Any, y_true: Any) -> float:
    """The `scale` (= 1/T) of sigmoid(scale * logit) with the least mean NLL."""
    y, x = _check(y_true, logits)

    def nll(log_scale: float) -> float:
        z = np.exp(log_scale) * x
        return float(np.mean(np.logaddexp(0, z) - y * z))

    return float(np.exp(minimize_scalar(nll, bounds=(-8, 8), method="bounded").x))


def fit_isotonic(logits: Any, y_true: Any) -> tuple[list[float], list[float]]:
    """Knots (increasing logits, P(fake)) of scikit-learn's isotonic regression."""
    y, x = _check(y_true, logits)
    iso = IsotonicRegression(y_min=ISOTONIC_CLIP, y_max=1 - ISOTONIC_CLIP, out_of_bounds="clip").fit(x, y)
    return [float(v) for v in iso.X_thresholds_], [float(v) for v in iso.y_thresholds_]


def fit_calibration(method: Method, logits: Any, y_true: Any, fitted_on: str) -> Calibration:
    y, x = _check(y_true, logits)
    if y.min() == y.max():
        raise ValueError("calibration needs both real and fake images")
    if method == "platt":
        scale, bias = fit_platt(x, y)
        return Calibration(method="platt", scale=scale, bias=bias, fitted_on=fitted_on)
    if method == "temperature":
        return Calibration(method="temperature", scale=fit_temperature(x, y), bias=0.0, fitted_on=fitted_on)
    if method == "isotonic":
        kx, kp = fit_isotonic(x, y)
        return Calibration(method="isotonic", knots_logit=kx, knots_p=kp, fitted_on=fitted_on)
    raise ValueError(f"unknown calibration method {method!r}; known: {', '.join(METHODS)}")


def threshold_for_fpr(y_true: Any, p_fake: Any, target_fpr: float) -> float:
    """The lowest threshold at which at most `target_fpr` of the real images score >= it.
    Placed halfway between real scores, so it holds on this data despite ties."""
    if not 0 <= target_fpr < 1:
        raise ValueError("target FPR must be in [0, 1)")
    y, p = _check(y_true, p_fake)
    reals = np.sort(p[y == 0])[::-1]
    if not reals.size:
        raise ValueError("a false-positive rate needs real images")
    k = int(np.floor(target_fpr * reals.size + 1e-9))  # reals allowed at or above the threshold
    if k >= reals.size:
        return float(p.min())
    pivot = reals[k]
    higher = reals[reals > pivot]
    return float((pivot + higher.min()) / 2) if higher.size else _above(float(pivot))


def false_positive_rate(y_true: Any, p_fake: Any, threshold: float) -> float | None:
    y, p = _check(y_true, p_fake)
    reals = p[y == 0]
    return float((reals >= threshold).mean()) if reals.size else None


def reliability_bins(y_true: Any, p: Any, n_bins: int = 15) -> list[dict[str, float]]:
    """Per non-empty equal-width bin: its centre, mean P(fake), fraction fake and count."""
    y, p = _check(y_true, p)
    idx = np.clip((p * n_bins).astype(int), 0, n_bins - 1)
    out = []
    for b in range(n_bins):
        sel = idx == b
        if sel.any():
            out.append({"centre": (b + 0.5) / n_bins, "mean_p": float(p[sel].mean()),
                        "fraction_fake": float(y[sel].mean()), "n": int(sel.sum())})
    return out


def plot_reliability(curves: dict[str, tuple[Any, Any]], path: str | Path, n_bins: int = 15,
                     title: str = "Reliability") -> Path:
    """Reliability diagram (fraction fake vs mean P(fake) per bin), a line per named curve
    (`name -> (y_true, p_fake)`), ECE in the legend. Needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from synthscan.evaluate.metrics import expected_calibration_error

    fig, ax = plt.subplots(figsize=(4.4, 4.2))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect")
    for name, (y, p) in curves.items():
        bins = reliability_bins(y, p, n_bins)
        ax.plot([b["mean_p"] for b in bins], [b["fraction_fake"] for b in bins], marker="o",
                label=f"{name} (ECE {expected_calibration_error(y, p, n_bins):.3f})")
    ax.set_xlabel("mean P(fake) in bin")
    ax.set_ylabel("fraction fake in bin")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

"""Detection metrics over plain arrays: accuracies, AP/AUC, oracle thresholds, calibration.

Conventions: ``y_true`` is 1 for fake (the positive class) and 0 for real; ``p_fake`` is P(fake);
an image is called fake when ``p_fake >= threshold`` (as in `synthscan.result.Decision`).
Metrics that are undefined for the data given are ``None``, never NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score, roc_curve

from synthscan.detectors.base import Calibration

Target = Literal["balanced_accuracy", "accuracy"]

_ACC_KEYS = ("accuracy", "real_accuracy", "fake_accuracy", "balanced_accuracy")
_REAL_GROUP_KEYS = {"n", "n_real", "n_fake", "accuracy", "real_accuracy"}
_MAX_BAND_CANDIDATES = 1000


def _check(y_true: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(int).ravel()
    p = np.asarray(p, dtype=float).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y_true and scores differ in length: {y.size} != {p.size}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must contain only 0 (real) and 1 (fake)")
    if not np.isfinite(p).all():
        raise ValueError("scores must be finite")
    return y, p


def _mean(x: np.ndarray) -> float | None:
    return float(x.mean()) if x.size else None


def _accuracies(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float | None]:
    pred = p >= threshold
    real, fake = _mean(~pred[y == 0]), _mean(pred[y == 1])
    bal = None if real is None or fake is None else (real + fake) / 2
    return dict(zip(_ACC_KEYS, (_mean(pred == y.astype(bool)), real, fake, bal)))


def binary_metrics(y_true: Any, p_fake: Any, threshold: float = 0.5) -> dict[str, Any]:
    """Counts, accuracies at ``threshold``, AP and ROC-AUC (fake = positive), and the same
    accuracies at the oracle threshold (see `choose_threshold`; balanced accuracy when both
    classes are present, else accuracy). Undefined values (AP/AUC or balanced accuracy with
    one class, a class accuracy with no such images, anything on empty input) are ``None``."""
    y, p = _check(y_true, p_fake)
    n_fake = int(y.sum())
    out: dict[str, Any] = {"n": int(y.size), "n_real": int(y.size) - n_fake, "n_fake": n_fake}
    out.update(_accuracies(y, p, threshold))
    both = 0 < n_fake < y.size
    out["ap"] = float(average_precision_score(y, p)) if both else None
    out["roc_auc"] = float(roc_auc_score(y, p)) if both else None
    oracle = choose_threshold(y, p) if y.size else None
    out["oracle_threshold"] = oracle
    acc = _accuracies(y, p, oracle) if oracle is not None else dict.fromkeys(_ACC_KEYS)
    out.update({f"oracle_{k}": v for k, v in acc.items()})
    return out


def per_group_metrics(
    y_true: Any, p_fake: Any, groups: Sequence[Any], threshold: float = 0.5, *, reals_pool: bool = True
) -> dict[str, dict[str, Any]]:
    """``{"overall": ..., <group>: ...}`` with `binary_metrics` per group (e.g. generator).

    Detection-benchmark protocol: a generator group holds only fakes, so with ``reals_pool``
    (default) each group containing fakes is scored on **its fakes together with all real
    images** in the data (as in the per-generator tables of CNNDetection/NPR). Hence for such a
    group ``real_accuracy``, ``balanced_accuracy``, ``ap``, ``roc_auc`` and the oracle threshold
    come from that pooled set and ``n_real`` counts the pooled reals, while ``n``, ``accuracy``
    and ``oracle_accuracy`` refer to the group's own images only. A group of reals only gets
    ``n``, ``n_real``, ``n_fake``, ``accuracy`` and ``real_accuracy``; its other keys are ``None``.
    With ``reals_pool=False`` every group is scored on its own images alone.
    """
    y, p = _check(y_true, p_fake)
    g = np.asarray([str(x) for x in groups], dtype=object)
    if g.shape != y.shape:
        raise ValueError(f"groups and y_true differ in length: {g.size} != {y.size}")
    out = {"overall": binary_metrics(y, p, threshold)}
    for name in sorted(set(g.tolist())):
        if name == "overall":
            raise ValueError('"overall" is reserved and cannot be a group name')
        own = g == name
        if not y[own].any():  # real photos only
            m = binary_metrics(y[own], p[own], threshold)
            m = {k: (v if k in _REAL_GROUP_KEYS else None) for k, v in m.items()}
        else:
            ev = (own & (y == 1)) | (y == 0) if reals_pool else own
            m = binary_metrics(y[ev], p[ev], threshold)
            m["n"] = int(own.sum())
            m["accuracy"] = _accuracies(y[own], p[own], threshold)["accuracy"]
            m["oracle_accuracy"] = _accuracies(y[own], p[own], m["oracle_threshold"])["accuracy"]
        out[name] = m
    return out


def per_family_metrics(
    y_true: Any, p_fake: Any, families: Sequence[Any], threshold: float = 0.5, *, reals_pool: bool = True
) -> dict[str, dict[str, Any]]:
    """`per_group_metrics` grouped by family (``gan``, ``diffusion``, ``other``, ``real``...)."""
    return per_group_metrics(y_true, p_fake, families, threshold, reals_pool=reals_pool)


def choose_threshold(y_true: Any, p_fake: Any, *, target: Target = "balanced_accuracy") -> float:
    """Threshold maximising ``target`` on the data ("balanced_accuracy" or "accuracy").

    Candidates are the ROC operating points; the returned value is the midpoint of the gap
    between the chosen score and the next lower one, so it reproduces that operating point
    on the data while staying off the scores. With a single class present the target falls
    back to accuracy: all-real data gets a threshold above every score, all-fake data the
    lowest score. Ties go to the highest threshold.
    """
    if target not in ("balanced_accuracy", "accuracy"):
        raise ValueError(f"unknown target {target!r}")
    y, p = _check(y_true, p_fake)
    if not y.size:
        raise ValueError("cannot choose a threshold on empty data")
    n_fake = int(y.sum())
    if n_fake == y.size:
        return float(p.min())
    if n_fake == 0:
        return _above(float(p.max()))
    fpr, tpr, thr = roc_curve(y, p, drop_intermediate=False)
    if target == "balanced_accuracy":
        score = (tpr + 1 - fpr) / 2
    else:
        score = (tpr * n_fake + (1 - fpr) * (y.size - n_fake)) / y.size
    k = int(np.argmax(score))
    if k == 0:  # the "inf" point: everything real
        return _above(float(thr[1]))
    if k == len(thr) - 1:
        return float(thr[k])
    hi, lo = float(thr[k]), float(thr[k + 1])
    mid = (hi + lo) / 2
    return mid if lo < mid <= hi else hi


def _above(top: float) -> float:
    """A threshold strictly above ``top``: halfway to 1 for probabilities, else the next float."""
    return (top + 1) / 2 if top < 1 else float(np.nextafter(top, np.inf))


def choose_uncertain_band(
    y_true: Any, p_fake: Any, threshold: float, *, max_error: float = 0.05
) -> tuple[float, float]:
    """Narrowest band ``(low, high)`` with ``low <= threshold <= high`` such that the images
    outside it (``p < low`` called real, ``p > high`` called fake; the band is inclusive, as in
    `Decision`) have an error rate ``<= max_error`` on the data.

    Band edges are placed on scores (at most ~1000 quantile candidates per side). Ties in
    width go to the band holding fewer images. If no band reaches ``max_error`` the result is
    the band covering every score and the threshold (clipped to [0, 1]): on this data nothing
    would be decided, which is the only way to meet the target.
    """
    y, p = _check(y_true, p_fake)
    order = np.argsort(p, kind="stable")
    ps, ys = p[order], y[order]
    fake_cum = np.concatenate([[0], np.cumsum(ys)])  # fakes among the i lowest scores
    lows = np.append(_candidates(ps[ps < threshold]), threshold)
    highs = np.append(threshold, _candidates(ps[ps >= threshold]))
    i_low = np.searchsorted(ps, lows, side="left")  # number of images with p < low
    err_low = fake_cum[i_low]  # fakes called real
    i_high = np.searchsorted(ps, highs, side="right")  # images with p <= high
    n_high = ps.size - i_high
    err_high = n_high - (fake_cum[-1] - fake_cum[i_high])  # reals called fake
    errors = err_low[:, None] + err_high[None, :]
    decided = i_low[:, None] + n_high[None, :]
    ok = errors <= max_error * decided  # vacuously true when nothing is decided
    width = np.where(ok, highs[None, :] - lows[:, None], np.inf)
    best = np.flatnonzero(width == width.min())
    a, b = np.unravel_index(best[np.argmax(decided.ravel()[best])], width.shape)
    return max(0.0, float(lows[a])), min(1.0, float(highs[b]))


def _candidates(scores: np.ndarray) -> np.ndarray:
    u = np.unique(scores)
    if u.size > _MAX_BAND_CANDIDATES:
        u = np.unique(np.quantile(scores, np.linspace(0, 1, _MAX_BAND_CANDIDATES), method="nearest"))
    return u


def fit_platt(logits: Any, y_true: Any, *, l2: float = 1e-6) -> tuple[float, float]:
    """Logistic (Platt) calibration: ``(scale, bias)`` minimising the mean NLL of
    ``sigmoid(scale * logit + bias)``; temperature scaling is ``bias = 0, scale = 1/T``.
    A tiny L2 penalty keeps the fit finite on perfectly separated data."""
    y, x = _check(y_true, logits)
    if y.min() == y.max():
        raise ValueError("fit_platt needs both classes")

    def nll(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = w[0] * x + w[1]
        r = expit(z) - y
        loss = np.mean(np.logaddexp(0, z) - y * z) + l2 * (w @ w) / 2
        return loss, np.array([np.mean(r * x), np.mean(r)]) + l2 * w

    w = minimize(nll, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B").x
    return float(w[0]), float(w[1])


def apply_platt(logits: Any, scale: float, bias: float) -> np.ndarray:
    """Calibrated P(fake) from logits (the rule `CalibratedModel` applies)."""
    return Calibration(scale=scale, bias=bias).apply(logits)


def expected_calibration_error(y_true: Any, p: Any, n_bins: int = 15) -> float | None:
    """ECE of P(fake): equal-width bins on [0, 1], weighted mean |fraction fake - mean p|.
    (The reliability of the fake probability, not of the top-label confidence.)"""
    y, p = _check(y_true, p)
    if not y.size:
        return None
    bins = np.clip((p * n_bins).astype(int), 0, n_bins - 1)
    gap = np.abs(np.bincount(bins, y, n_bins) - np.bincount(bins, p, n_bins))
    return float(gap.sum() / y.size)


def brier(y_true: Any, p: Any) -> float | None:
    """Brier score (mean squared error of P(fake)); ``None`` on empty input."""
    y, p = _check(y_true, p)
    return float(brier_score_loss(y, p, labels=[0, 1])) if y.size else None

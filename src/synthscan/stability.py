"""Stability-checked verdicts: re-score an image under a few cheap re-encodings it could
plausibly have gone through, and refuse to give a verdict that one of them changes.

The same photo can move between "real" and "ai-generated" after one JPEG save. A verdict
that does not survive a 0.75x resize or a small crop shift (by default; JPEG 90 and WebP 80 on
request) is not one to act on: it becomes "uncertain", with an `unstable-verdict` warning naming
the re-encodings that changed it. `ScanResult.stability` carries each variant's P(fake) and the
spread.

The default pair and margin come from `benchmarks/stability_variants.py`, which replays the rule
on val images the robustness benchmark does not use (784) and, with --robustness-sample, on that
benchmark's own sample (175). On the default model 1.1.0 (an AMD EPYC with AVX-512 VNNI):
- variants: the pair cut 3 of 6 confident errors on the 784 (all four: 3 of 6, at 5 scans per
  image instead of 3, with 190 correct verdicts made uncertain against 54) and 4 of 7 on the
  sample; the 5 px shift alone cut 3 of 6 there but 1 of 7 on the sample;
- margin: only images whose P(fake) lies within DEFAULT_MARGIN = 2 logits outside the uncertain
  band are re-scored. On the 784 that re-scored 27% of images (1.54 scans per image instead of
  2.86) and cut the same 3 of 6; on the sample 38% (1.77 instead of 2.67), the same 4 of 7. A
  margin of 1 tied on the 784 but cut 1 of 7 on the sample. (1.0.0 on an AVX2-only CPU gave the
  same choice.)
An image already "uncertain" is never re-scored: no re-encoding can make it more so.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np
from scipy.special import logit

from synthscan.evaluate.perturb import jpeg, resize, webp
from synthscan.io import LoadedImage
from synthscan.result import Notice, ScanResult, Stability

SHIFT_PX = 5  # odd: moves the 8x8 JPEG grid and the 2x up-sampling period, and the tile grid


def _shift(img: np.ndarray) -> np.ndarray:
    """Drop SHIFT_PX rows and columns at the top left (when the image is big enough)."""
    h, w = img.shape[:2]
    return img[SHIFT_PX:, SHIFT_PX:] if min(h, w) > 4 * SHIFT_PX else img


VARIANTS = {
    "jpeg90": lambda img: jpeg(img, 90),
    "resize0.75": lambda img: resize(img, 0.75),
    "shift5": _shift,
    "webp80": lambda img: webp(img, 80),
}
DEFAULT_VARIANTS = ("resize0.75", "shift5")
DEFAULT_MARGIN = 2.0  # logits outside the uncertain band; see the module docstring


class StabilityCheck:
    """Re-scores with a copy of `scanner` that neither explains nor checks stability itself.
    variants: names from `VARIANTS` (default `DEFAULT_VARIANTS`).
    margin: re-score only images whose P(fake) lies within this many logits outside the uncertain
    band (default `DEFAULT_MARGIN`; math.inf: every image). An image already "uncertain" is never
    re-scored: no re-encoding can make it more so."""

    def __init__(self, scanner: Any, variants: list[str] | None = None, margin: float = DEFAULT_MARGIN):
        names = list(DEFAULT_VARIANTS) if variants is None else variants
        unknown = [v for v in names if v not in VARIANTS]
        if unknown or not names:
            raise ValueError(f"unknown stability variant(s) {unknown}; known: {', '.join(VARIANTS)}")
        if not margin >= 0:
            raise ValueError(f"stability margin must be >= 0 logits, got {margin}")
        self.variants = names
        self.margin = margin
        self.decision = scanner.decision
        self.scorer = copy.copy(scanner)
        self.scorer.explain_options = None
        self.scorer.provenance_options = None  # read once, for the original file
        self.scorer.stability = None

    def skip_reason(self, p_fake: float, verdict: str) -> str | None:
        """Why an image with this score need not be re-scored; None: re-score it."""
        if verdict == "uncertain":
            return "already uncertain"
        d = self.decision
        edge = d.uncertain_high if p_fake > d.uncertain_high else d.uncertain_low
        p, e = np.clip([p_fake, edge], 1e-7, 1 - 1e-7)  # a probability of 0 or 1 has an infinite logit
        distance = abs(float(logit(p) - logit(e)))
        if distance > self.margin:
            return (f"P(fake) {p_fake:.4f} is {distance:.1f} logits outside the uncertain band; "
                    f"images within {self.margin:g} are re-scored")
        return None

    def score(self, images: list[LoadedImage]) -> list[list[ScanResult]]:
        """Each image's variants, scored in one call so that tiles of a whole chunk share batches
        (scoring images one by one is several times slower)."""
        copies = [dataclasses.replace(im, rgb=np.ascontiguousarray(VARIANTS[v](im.rgb))) for im in images for v in self.variants]
        scored = self.scorer.scan_images(copies)
        k = len(self.variants)
        return [scored[i * k:(i + 1) * k] for i in range(len(images))]

    def apply(self, image: LoadedImage, result: ScanResult, scored: list[ScanResult] | None = None) -> None:
        """Attach `result.stability`; make a verdict that any variant changes "uncertain".
        `scored`: the image's variants from `score`; else they are scored now, unless
        `skip_reason` says the image need not be."""
        reason = self.skip_reason(result.p_fake, result.verdict) if scored is None else None
        if reason is not None:
            result.stability = Stability(
                p_fake={}, verdicts={}, min=result.p_fake, max=result.p_fake, spread=0.0,
                original_verdict=result.verdict, stable=True, rescored=False, not_rescored_because=reason)
            return
        scored = scored if scored is not None else self.score([image])[0]
        p = {v: r.p_fake for v, r in zip(self.variants, scored)}
        result.seconds += sum(r.seconds for r in scored)
        changed = [v for v, r in zip(self.variants, scored) if r.verdict != result.verdict]
        everything = [result.p_fake, *p.values()]
        result.stability = Stability(
            p_fake=p, verdicts={v: r.verdict for v, r in zip(self.variants, scored)},
            min=min(everything), max=max(everything), spread=max(everything) - min(everything),
            original_verdict=result.verdict, stable=not changed,
        )
        if changed and result.verdict != "uncertain":  # an uncertain verdict needs no downgrade
            listed = ", ".join(f"{v} -> {r.verdict} ({r.p_fake:.2f})" for v, r in zip(self.variants, scored) if v in changed)
            result.warnings.append(Notice(
                code="unstable-verdict",
                message=f"{result.verdict} ({result.p_fake:.2f}) changes under re-encoding: {listed}; reported as uncertain",
            ))
            result.verdict = "uncertain"

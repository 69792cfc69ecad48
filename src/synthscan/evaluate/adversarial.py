"""Adversarial attacks on detectors: FGSM and PGD (L-inf and L2), white-box and transfer.

Written here rather than taken from torchattacks: torchattacks declares torchvision as a
dependency, which this project does not install. The implementations follow Goodfellow et al.
2015 (FGSM) and Madry et al. 2018 (PGD, random start, step 2.5 * eps / steps); the tests check
them against closed-form optima on a linear model (and against torchattacks where installed).

Threat model: the attacker perturbs the pixels the detector sees (its first input tile, in
[0, 1]), within an eps ball, and saves the result as an 8-bit image; every score is taken on
that saved image by a normal scan. Each image is pushed towards the wrong label (fakes towards
"real": evasion; reals towards "ai-generated": a false accusation). Gradient-free detectors
(texture-gbm) are attacked by transfer: images crafted on a differentiable model.

A spec is ``METHOD[:key=value,...]``: ``pgd:eps=2/255,steps=5,norm=linf`` or ``fgsm:eps=4/255``;
``fraction`` (training only) is the share of each batch replaced by adversarial copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Literal

import torch
import torch.nn.functional as F

LogitFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class AttackSpec:
    method: Literal["fgsm", "pgd"]
    eps: float
    norm: Literal["linf", "l2"] = "linf"
    steps: int = 1
    alpha: float | None = None  # step size; default eps for FGSM, 2.5 * eps / steps for PGD
    random_start: bool = True  # PGD only
    fraction: float = 0.5  # adversarial training: share of each batch attacked

    @property
    def step_size(self) -> float:
        if self.alpha is not None:
            return self.alpha
        return self.eps if self.method == "fgsm" else 2.5 * self.eps / self.steps

    @property
    def label(self) -> str:
        eps = f"{self.eps * 255:g}/255" if self.norm == "linf" else f"{self.eps:g}"
        steps = f",steps={self.steps}" if self.method == "pgd" else ""
        return f"{self.method}:{self.norm},eps={eps}{steps}"


def _number(text: str) -> float:
    return float(Fraction(text.strip())) if "/" in text else float(text)


def parse_attack(spec: str) -> AttackSpec:
    """``"pgd:eps=2/255,steps=5"`` -> AttackSpec(method="pgd", eps=2/255, steps=5)."""
    method, _, rest = spec.partition(":")
    method = method.strip().lower()
    if method not in ("fgsm", "pgd"):
        raise ValueError(f"unknown attack {method!r}; known: fgsm, pgd")
    kw: dict = {"method": method, "steps": 1 if method == "fgsm" else 10}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        try:
            if key in ("eps", "alpha", "fraction"):
                kw[key] = _number(value)
            elif key == "steps":
                kw[key] = int(value)
            elif key == "norm" and value.strip().lower() in ("linf", "l2"):
                kw[key] = value.strip().lower()
            elif key == "random_start" and value.strip().lower() in ("true", "false"):
                kw[key] = value.strip().lower() == "true"
            else:
                raise ValueError
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"{spec!r}: bad setting {item!r} (eps, steps, alpha, norm=linf|l2, random_start, fraction)") from None
    if "eps" not in kw or kw["eps"] <= 0:
        raise ValueError(f"{spec!r}: give eps > 0, e.g. eps=2/255")
    if method == "fgsm" and kw["steps"] != 1:
        raise ValueError("fgsm takes one step; use pgd for more")
    if kw["steps"] < 1 or not 0 < kw.get("fraction", 0.5) <= 1:
        raise ValueError(f"{spec!r}: steps must be >= 1 and fraction in (0, 1]")
    return AttackSpec(**kw)


def _per_sample_norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (t.dim() - 1)))


def _project(delta: torch.Tensor, spec: AttackSpec) -> torch.Tensor:
    if spec.norm == "linf":
        return delta.clamp(-spec.eps, spec.eps)
    return delta * (spec.eps / _per_sample_norm(delta)).clamp(max=1.0)


def attack(f: LogitFn, x: torch.Tensor, y: torch.Tensor, spec: AttackSpec,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Adversarial copies of `x` (N, 3, H, W) in [0, 1] that raise the BCE loss of the logits
    `f(x)` for labels `y` (1 = fake), within `spec.eps` of `x`. `f` is left as it was."""
    x = x.detach()
    y = y.to(x.dtype)
    delta = torch.zeros_like(x)
    if spec.method == "pgd" and spec.random_start:
        if spec.norm == "linf":
            delta = (torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) * 2 - 1) * spec.eps
        else:
            d = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            r = torch.rand((x.shape[0],), generator=generator, dtype=x.dtype, device=x.device).view(-1, 1, 1, 1)
            delta = d / _per_sample_norm(d) * r * spec.eps
        delta = (x + delta).clamp(0, 1) - x
    for _ in range(spec.steps):
        delta.requires_grad_(True)
        loss = F.binary_cross_entropy_with_logits(f(x + delta), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            step = grad.sign() if spec.norm == "linf" else grad / _per_sample_norm(grad)
            delta = _project(delta + spec.step_size * step, spec)
            delta = (x + delta).clamp(0, 1) - x
    return (x + delta).detach()


def adversarial_batch(detector: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, spec: AttackSpec,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Adversarial training: the batch with its first `spec.fraction` replaced by attacked
    copies. Crafted with every module in eval mode (attack steps must not move BatchNorm
    statistics); each module's train/eval mode is restored afterwards."""
    n = max(1, round(spec.fraction * len(x)))
    modes = {m: m.training for m in detector.modules()}
    detector.eval()
    try:
        x_adv = attack(detector, x[:n], y[:n], spec, generator)
    finally:
        for m, training in modes.items():
            m.train(training)
    return torch.cat([x_adv, x[n:]])

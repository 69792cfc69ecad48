"""What provenance reading returns: one `Signal` per source of evidence, weak `Hint`s, and the
`Fusion` that joins them with the pixel verdict.

Every signal says whether it was `present`, `absent`, `invalid` (there, but unreadable or failing
validation) or `unchecked` (could not be looked for: a package is missing, the image is too small,
...), always with a one-line reason. `claims` is what a present signal says about the file's
origin; it is a claim, not a proof (see the README's Provenance section).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Status = Literal["present", "absent", "invalid", "unchecked"]
# What a signal says about the file: made by a generative model, captured by a camera, edited
# (with or without AI), or nothing either way.
Claim = Literal["generated", "capture", "edited", "none"]
VerdictSource = Literal["pixels", "c2pa", "metadata", "watermark", "pixels+metadata"]
SIGNAL_NAMES = ("c2pa", "metadata", "generator", "watermark", "hints")


class Signal(BaseModel):
    name: str
    status: Status
    reason: str
    claims: Claim = "none"
    details: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def absent(cls, name: str, reason: str) -> "Signal":
        return cls(name=name, status="absent", reason=reason)

    @classmethod
    def invalid(cls, name: str, reason: str, **details: Any) -> "Signal":
        return cls(name=name, status="invalid", reason=reason, details=details)

    @classmethod
    def unchecked(cls, name: str, reason: str) -> "Signal":
        return cls(name=name, status="unchecked", reason=reason)


class Hint(BaseModel):
    """Weak evidence. weight > 0 points towards generated, < 0 towards a camera; |weight| <= 1."""

    name: str
    weight: float
    reason: str


class Fusion(BaseModel):
    verdict: Literal["ai-generated", "real", "uncertain"] | None
    source: VerdictSource
    reason: str
    rule: str  # the id of the rule that decided (see synthscan.provenance.fusion.RULES)
    pixel_verdict: Literal["ai-generated", "real", "uncertain"] | None = None
    conflict: str | None = None


class Provenance(BaseModel):
    signals: dict[str, Signal]
    hints: list[Hint] = Field(default_factory=list)
    seconds: float = 0.0
    fusion: Fusion | None = None

    def signal(self, name: str) -> Signal:
        return self.signals[name]

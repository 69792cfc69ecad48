"""The objects a scan returns.

One `ScanResult` per input file, whether it was scanned or failed: errors travel in the same
stream as verdicts so that a batch never loses track of a file. Later features (explanations,
provenance signals) attach to the optional fields without changing the rest.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, Field

from synthscan.explain.schema import Explanation
from synthscan.provenance.model import Provenance

Verdict = Literal["ai-generated", "real", "uncertain"]


class Decision(BaseModel):
    """How a calibrated probability becomes a verdict.

    p_fake >= threshold and outside the band -> "ai-generated"; p_fake < threshold and outside
    the band -> "real"; uncertain_low <= p_fake <= uncertain_high -> "uncertain".
    """

    threshold: float = 0.5
    uncertain_low: float = 0.35
    uncertain_high: float = 0.65

    def verdict(self, p_fake: float) -> Verdict:
        if self.uncertain_low <= p_fake <= self.uncertain_high:
            return "uncertain"
        return "ai-generated" if p_fake >= self.threshold else "real"

    def with_threshold(self, threshold: float) -> "Decision":
        """Move the threshold, keeping the band's half-widths but never more than half the room
        left on each side, so both verdicts stay reachable (e.g. threshold 0.9 -> band to 0.95)."""
        half_low = min(self.threshold - self.uncertain_low, threshold / 2)
        half_high = min(self.uncertain_high - self.threshold, (1 - threshold) / 2)
        return Decision(threshold=threshold, uncertain_low=threshold - half_low, uncertain_high=threshold + half_high)


class Notice(BaseModel):
    """A machine-readable code with a human sentence, for errors and warnings alike."""

    code: str
    message: str


class Tile(BaseModel):
    """One crop the detector scored: its box in image pixels and its calibrated P(fake)."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1
    p_fake: float


class Stability(BaseModel):
    """How the verdict held up when the image was re-scored under re-encodings (`synthscan.stability`).

    An image whose verdict is already "uncertain", or whose P(fake) lies far outside the uncertain
    band, is not re-scored (`rescored` False, `not_rescored_because` says why): its variants are
    empty and its min, max and spread those of the original alone."""

    p_fake: dict[str, float]  # variant name -> P(fake)
    verdicts: dict[str, Verdict]
    min: float  # over the original and the variants
    max: float
    spread: float
    original_verdict: Verdict  # before a flip made it "uncertain"
    stable: bool  # no re-scored variant changed the verdict
    rescored: bool = True
    not_rescored_because: str | None = None


class ScanResult(BaseModel):
    path: str
    status: Literal["ok", "error", "skipped"] = "ok"  # skipped: passed over by a folder walk
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    p_fake: float | None = None
    verdict: Verdict | None = None
    # What decided `verdict` (see synthscan.provenance.fusion): pixels, c2pa, metadata, watermark
    # or pixels+metadata, with a one-line reason. The pixel verdict is kept in provenance.fusion.
    verdict_source: str | None = None
    verdict_reason: str | None = None
    threshold: float | None = None
    model: str | None = None
    model_version: str | None = None
    tiles: int = 0
    padded: bool = False
    seconds: float = 0.0
    error: Notice | None = None
    warnings: list[Notice] = Field(default_factory=list)
    tile_scores: list[Tile] = Field(default_factory=list)
    explanation: Explanation | None = None  # `Scanner(explain=...)`, `synthscan explain`
    provenance: Provenance | None = None  # `Scanner(provenance=...)`, see synthscan.provenance
    stability: Stability | None = None  # `Scanner(stability=...)`, see synthscan.stability

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def flat(self) -> dict[str, Any]:
        """One row for tables and CSV: nested fields reduced to their codes."""
        return {
            "path": self.path,
            "status": self.status,
            "verdict": self.verdict or "",
            "verdict_source": self.verdict_source or "",
            "p_fake": "" if self.p_fake is None else round(self.p_fake, 4),
            "threshold": "" if self.threshold is None else self.threshold,
            "width": self.width or "",
            "height": self.height or "",
            "format": self.format or "",
            "tiles": self.tiles,
            "padded": self.padded,
            "model": self.model or "",
            "model_version": self.model_version or "",
            "seconds": round(self.seconds, 4),
            "sha256": self.sha256 or "",
            "error_code": self.error.code if self.error else "",
            "error": self.error.message if self.error else "",
            "warnings": ";".join(w.code for w in self.warnings),
        }


class ExitCode(int, Enum):
    OK = 0
    SOME_FAILED = 1
    USAGE = 2

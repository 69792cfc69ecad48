"""Provenance inside a scan: read the file's signals, fuse them with the pixel verdict, and
record both on the `ScanResult` (the pixel p_fake and verdict are kept in `provenance.fusion`)."""

from __future__ import annotations

from typing import Any

from synthscan.io import ImageLoadError, LoadedImage
from synthscan.io.loading import DEFAULT_MAX_BYTES, _read
from synthscan.provenance.fusion import fuse
from synthscan.provenance.model import Fusion, Provenance, Signal
from synthscan.provenance.reader import read_provenance
from synthscan.result import Notice, ScanResult


def read_file(path: str, *, max_bytes: int = DEFAULT_MAX_BYTES, **options: Any) -> Provenance:
    """The signals of one file (no detector involved); `options` as for `read_provenance`.
    Raises `ImageLoadError` when the file cannot be read at all."""
    return read_provenance(_read(path, max_bytes), **options)


def provenance_sentence(fusion: Fusion) -> str:
    """One sentence for narratives: what decided the verdict, and any conflict."""
    if fusion.source == "pixels":
        text = "The file's metadata does not change the verdict; it rests on the pixels."
    else:
        text = f"Final verdict {fusion.verdict}, decided by {fusion.source}: {fusion.reason.rstrip('.')}."
    if fusion.conflict:
        text += f" Conflict: {fusion.conflict}."
    return text


def attach_provenance(result: ScanResult, image: LoadedImage | None, options: dict[str, Any] | None,
                      data: bytes | None = None) -> None:
    """Fill `result.provenance`, `verdict_source` and `verdict_reason`, and replace `verdict` by
    the fused one. options None: metadata is not read (pixel-only verdict). `data`: the file's
    bytes when they are at hand (else read again from `result.path`). The scanner attaches
    provenance before explaining, so the narrator is told it; an explanation made earlier (the
    service explains in its workers, which never see the uploaded file) gets the sentence appended."""
    if not result.ok:
        return
    if options is None:
        result.verdict_source, result.verdict_reason = "pixels", "pixel-only verdict (metadata not read)"
        return
    options = dict(options)
    max_bytes = options.pop("max_bytes", DEFAULT_MAX_BYTES)
    try:
        data = data if data is not None else _read(result.path, max_bytes)
    except ImageLoadError as exc:
        provenance = Provenance(signals={"file": Signal.unchecked("file", f"file bytes unavailable: {exc.message}")})
    else:
        provenance = read_provenance(data, image.rgb if image is not None else None, **options)
    fusion = provenance.fusion = fuse(provenance, result.verdict, result.p_fake)
    result.provenance = provenance
    result.verdict = fusion.verdict
    result.verdict_source, result.verdict_reason = fusion.source, fusion.reason
    result.seconds += provenance.seconds
    if fusion.conflict:
        result.warnings.append(Notice(code="provenance-conflict", message=fusion.conflict))
    if result.explanation is not None and result.explanation.narrative is not None:
        narrative = result.explanation.narrative
        narrative.summary = f"{narrative.summary.rstrip()} {provenance_sentence(fusion)}".strip()

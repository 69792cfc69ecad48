"""Joining the provenance signals with the pixel verdict: an ordered rule set, first match wins.

1. `c2pa-generated`: a valid C2PA manifest declares generative AI (an AI digital source type or
   a known AI tool) -> ai-generated, source c2pa. A signer that is not on a trust list is named
   in the reason; declaring one's own image generated is rarely worth forging.
2. `generator-parameters`: generation parameters embedded by a known tool -> ai-generated,
   source metadata.
3. `watermark`: a generator's invisible watermark decoded -> ai-generated, source watermark.
4. `metadata-generated`: EXIF/XMP/IPTC declare AI (digital source type or AI-tool marker)
   -> ai-generated, source metadata.
5. `c2pa-capture`: a valid C2PA manifest from a camera with no generative action, and the pixel
   verdict is uncertain -> real, source pixels+metadata. A confident pixel verdict is kept.
6. `hints`: the weak hints' weights sum to at least `HINT_MOVE` in one direction, and the pixel
   verdict is uncertain -> that direction, source pixels+metadata.
7. `pixels`: otherwise the pixel verdict stands, source pixels.

Whatever decides, a conflict between what the file says (camera / generated) and a confident pixel
verdict the other way is reported in `conflict`, and an invalid C2PA manifest is always named.
The pixel p_fake is never changed.
"""

from __future__ import annotations

from synthscan.provenance.hints import HINT_MOVE
from synthscan.provenance.model import Fusion, Provenance

RULES = ("c2pa-generated", "generator-parameters", "watermark", "metadata-generated", "c2pa-capture", "hints", "pixels")


def _pixel_words(verdict: str | None, p_fake: float | None) -> str:
    if verdict is None or p_fake is None:
        return "no pixel verdict"
    return f"pixels say {verdict} (p_fake {p_fake:.2f})"


def fuse(provenance: Provenance, pixel_verdict: str | None, p_fake: float | None) -> Fusion:
    s = provenance.signals
    present = {name: sig for name, sig in s.items() if sig.status == "present"}
    pixels = _pixel_words(pixel_verdict, p_fake)

    def decide(verdict, source, rule, reason) -> Fusion:
        by_file = source in ("c2pa", "metadata", "watermark")  # the file itself says generated
        camera = [n for n, sig in present.items() if sig.claims == "capture" and n != "hints"]
        conflict = None
        if by_file and pixel_verdict == "real":
            conflict = f"{source} says generated, {pixels}"
        elif not by_file and pixel_verdict == "ai-generated" and camera:
            conflict = f"{camera[0]} says camera, {pixels}"
        if (c2pa := s.get("c2pa")) and c2pa.status == "invalid":
            reason += f"; C2PA manifest invalid ({c2pa.reason})"
        return Fusion(verdict=verdict, source=source, rule=rule, reason=reason, pixel_verdict=pixel_verdict,
                      conflict=conflict)

    c2pa = present.get("c2pa")
    if c2pa and c2pa.claims == "generated":
        return decide("ai-generated", "c2pa", "c2pa-generated", c2pa.reason)
    if "generator" in present:
        return decide("ai-generated", "metadata", "generator-parameters", present["generator"].reason)
    if (mark := present.get("watermark")) and mark.claims == "generated":
        return decide("ai-generated", "watermark", "watermark", mark.reason)
    if (meta := present.get("metadata")) and meta.claims == "generated":
        return decide("ai-generated", "metadata", "metadata-generated", meta.reason)
    if pixel_verdict == "uncertain":
        if c2pa and c2pa.claims == "capture":
            return decide("real", "pixels+metadata", "c2pa-capture", f"uncertain pixels moved to real: {c2pa.reason}")
        total = sum(h.weight for h in provenance.hints)
        if abs(total) >= HINT_MOVE:
            verdict = "ai-generated" if total > 0 else "real"
            return decide(verdict, "pixels+metadata", "hints",
                          f"uncertain pixels moved to {verdict} by weak hints (total weight {total:+.1f}): "
                          + "; ".join(h.reason for h in provenance.hints if h.weight))
    return decide(pixel_verdict, "pixels", "pixels", pixels)

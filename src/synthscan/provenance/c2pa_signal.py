"""C2PA / Content Credentials, read and validated by the maintained `c2pa-python` (c2pa-rs).

A manifest is `present` when its signature and hashes validate, with `details.trusted` saying
whether the signer chains to a configured trust list (PEM file of anchors). Without a trust list
every signer is reported as untrusted: a valid signature then proves only that the manifest was
not changed since someone signed it, not who that someone is. A manifest whose validation fails
(pixels or manifest changed after signing, bad store) is `invalid`, naming the failing checks.
"""

from __future__ import annotations

import functools
import io
from typing import Any

from synthscan.provenance.markers import digital_source_type, match_markers
from synthscan.provenance.model import Signal

NAME = "c2pa"
# The status codes C2PA defines for a signer missing from the trust list: reported, not failing.
UNTRUSTED_CODES = {"signingCredential.untrusted"}
MIME_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "TIFF": "image/tiff",
              "HEIF": "image/heic", "AVIF": "image/avif", "GIF": "image/gif"}
EDIT_ACTIONS = {"c2pa.edited", "c2pa.color_adjustments", "c2pa.cropped", "c2pa.filtered", "c2pa.resized",
                "c2pa.drawing", "c2pa.converted", "c2pa.placed", "c2pa.transcoded", "c2pa.orientation"}


@functools.cache
def _context(trust_anchors: str | None):
    import c2pa

    if trust_anchors is None:
        return None
    with open(trust_anchors, encoding="utf-8") as f:
        pem = f.read()
    return c2pa.Context(c2pa.Settings.from_dict({"verify": {"verify_trust": True}, "trust": {"trust_anchors": pem}}))


def read_c2pa(data: bytes, kind: str | None, trust_anchors: str | None = None) -> Signal:
    """The C2PA signal of a file's bytes; `kind` is `synthscan.io.loading.sniff_format`'s answer."""
    try:
        import c2pa
    except ImportError:
        return Signal.unchecked(NAME, "c2pa-python is not installed: pip install 'synthscan[provenance]'")
    mime = MIME_TYPES.get(kind or "")
    if mime is None:
        return Signal.unchecked(NAME, f"C2PA is not read from {kind or 'unrecognised'} files")
    try:
        context = _context(trust_anchors)
    except (OSError, UnicodeDecodeError, c2pa.C2paError) as exc:
        return Signal.unchecked(NAME, f"cannot use the trust list {trust_anchors}: {exc}")
    try:
        reader = c2pa.Reader.try_create(mime, io.BytesIO(data), context=context)
        if reader is None:
            return Signal.absent(NAME, "no C2PA manifest in the file")
        with reader:
            state = reader.get_validation_state()
            results = reader.get_validation_results() or {}
            manifest = reader.get_active_manifest() or {}
    except c2pa.C2paError as exc:
        return Signal.invalid(NAME, f"C2PA manifest store cannot be read: {exc}")
    return _signal(state, results, manifest)


def _signal(state: str | None, results: dict, manifest: dict) -> Signal:
    failures = results.get("activeManifest", {}).get("failure", [])
    failing = [f for f in failures if f.get("code") not in UNTRUSTED_CODES]
    trusted = state == "Trusted"
    details = _summary(manifest)
    details.update(validation_state=state, trusted=trusted,
                   failures=[f"{f.get('code')}: {f.get('explanation', '')}".strip(": ") for f in failing])
    claims, what = _claims(details)
    details["declares"] = what
    if state == "Invalid" or failing:
        first = failing[0].get("code") if failing else "validation"
        return Signal(name=NAME, status="invalid", claims="none", details=details,
                      reason=f"C2PA manifest fails validation ({first}); its claims cannot be relied on")
    signer = details.get("signer") or "unknown signer"
    trust = "trusted signer" if trusted else "signer not on a trust list"
    return Signal(name=NAME, status="present", claims=claims, details=details,
                  reason=f"valid C2PA manifest by {signer} ({trust}): {what}")


def _summary(manifest: dict) -> dict[str, Any]:
    generators = [g.get("name", "") + (f" {g['version']}" if g.get("version") else "")
                  for g in manifest.get("claim_generator_info", []) if isinstance(g, dict)]
    if not generators and manifest.get("claim_generator"):
        generators = [str(manifest["claim_generator"])]
    actions = []
    for assertion in manifest.get("assertions", []):
        if str(assertion.get("label", "")).startswith("c2pa.actions"):
            for a in (assertion.get("data") or {}).get("actions", []):
                agent = a.get("softwareAgent")
                actions.append({
                    "action": a.get("action"),
                    "digital_source_type": (a.get("digitalSourceType") or "").rsplit("/", 1)[-1] or None,
                    "software_agent": agent.get("name") if isinstance(agent, dict) else agent,
                })
    signature = manifest.get("signature_info") or {}
    return {
        "claim_generator": generators,
        "title": manifest.get("title"),
        "actions": actions,
        "ingredients": [{"title": i.get("title"), "relationship": i.get("relationship")}
                        for i in manifest.get("ingredients", [])],
        "signer": signature.get("common_name") or signature.get("issuer"),
        "issuer": signature.get("issuer"),
        "signed_at": signature.get("time"),
    }


def _claims(details: dict[str, Any]) -> tuple[str, str]:
    """What the manifest declares: generated (an AI source type or AI tool), capture, or edited."""
    types = [a["digital_source_type"] for a in details["actions"] if a["digital_source_type"]]
    categories = {t: digital_source_type(t) for t in types}
    generated = [t for t, c in categories.items() if c == "generated"]
    if generated:
        return "generated", f"digital source type {generated[0]}"
    tools = match_markers("claim_generator", details["claim_generator"]) + match_markers(
        "software", [a["software_agent"] for a in details["actions"] if a["software_agent"]])
    if ai := [m for m in tools if m["claims"] == "generated"]:
        return "generated", f"made with {ai[0]['tool']}"
    if any(c == "capture" for c in categories.values()):
        return "capture", f"digital source type {next(t for t, c in categories.items() if c == 'capture')}"
    names = [a["action"] for a in details["actions"]]
    if any(n in EDIT_ACTIONS for n in names):
        return "edited", "edit actions " + ", ".join(sorted({n for n in names if n in EDIT_ACTIONS}))
    return "none", "no digital source type declared"

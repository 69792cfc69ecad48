"""EXIF, XMP and IPTC fields that speak to a file's origin: camera make and model, lens,
software, capture and modification dates, the IPTC digital source type, and the AI-tool markers
of `markers.json`. All read with Pillow from the file's header, without decoding pixels.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from PIL import ExifTags, Image, IptcImagePlugin

from synthscan.provenance.markers import digital_source_type, match_markers
from synthscan.provenance.model import Signal

NAME = "metadata"
_IFD0 = {"make": 0x010F, "model": 0x0110, "software": 0x0131, "modified": 0x0132, "description": 0x010E,
         "artist": 0x013B}
_EXIF_IFD = {"captured": 0x9003, "exposure_time": 0x829A, "f_number": 0x829D, "iso": 0x8827,
             "focal_length": 0x920A, "lens_make": 0xA433, "lens_model": 0xA434}
USER_COMMENT = 0x9286
# XMP properties by local name (namespaces vary between writers), with the field they fill.
_XMP = {"DigitalSourceType": "digital_source_type", "CreatorTool": "creator_tool", "Credit": "credit",
        "description": "xmp_description", "Make": "make", "Model": "model", "LensModel": "lens_model",
        "DateTimeOriginal": "captured", "ModifyDate": "modified", "UserComment": "xmp_user_comment"}
# IPTC-IIM (record 2) datasets: originating program, credit, caption.
_IPTC = {(2, 65): "iptc_program", (2, 110): "credit", (2, 120): "iptc_caption"}
CAMERA_EXPOSURE = ("exposure_time", "f_number", "iso", "captured")
MAX_FIELD = 2000  # characters kept per text field


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).strip("\x00 \t\r\n")
    return text[:MAX_FIELD] or None


def user_comment(raw: Any) -> str | None:
    """EXIF UserComment: an 8-byte charset prefix (ASCII, UNICODE = UTF-16, JIS) then the text."""
    if isinstance(raw, str):
        return _text(raw)
    if not isinstance(raw, bytes) or len(raw) < 8:
        return None
    prefix, body = raw[:8], raw[8:]
    if prefix.startswith(b"UNICODE"):
        # Writers disagree on byte order; UTF-16 text of ASCII has a zero in every other byte.
        order = "utf-16-be" if body[:1] == b"\x00" else "utf-16-le"
        return _text(body.decode(order, "replace"))
    return _text(body)


def read_exif(image: Image.Image, fields: dict[str, Any], problems: list[str], data: bytes | None = None) -> None:
    raw = image.info.get("exif")
    try:
        # Pillow decodes a whole PNG to look for an eXIf chunk after the pixels; a file whose bytes
        # hold no such chunk type has none, so skip that (~10 ms for a 1-MP image).
        no_chunk = image.format == "PNG" and raw is None and data is not None and b"eXIf" not in data
        exif = Image.Exif() if no_chunk else image.getexif()
        exif_ifd = exif.get_ifd(ExifTags.IFD.Exif)
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds on broken EXIF
        problems.append(f"EXIF cannot be parsed: {type(exc).__name__}: {exc}")
        return
    if raw and not exif:
        problems.append(f"EXIF block of {len(raw)} bytes holds no readable tag (wrong offsets?)")
    for name, tag in _IFD0.items():
        fields[name] = _text(exif.get(tag))
    for name, tag in _EXIF_IFD.items():
        value = exif_ifd.get(tag)
        fields[name] = None if value is None else (_text(value) if isinstance(value, (str, bytes)) else float(value))
    fields["user_comment"] = user_comment(exif_ifd.get(USER_COMMENT))
    fields["gps"] = ExifTags.IFD.GPSInfo in exif


def read_xmp(image: Image.Image, fields: dict[str, Any], problems: list[str]) -> None:
    raw = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")
    if not raw:
        return
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    start = text.find("<x:xmpmeta")
    start = start if start >= 0 else text.find("<rdf:RDF")
    try:
        root = ET.fromstring(text[start:text.rfind(">") + 1] if start >= 0 else text)
    except ET.ParseError as exc:
        problems.append(f"XMP is not well-formed XML: {exc}")
        return
    fields["xmp"] = True
    for element in root.iter():
        local = element.tag.rsplit("}", 1)[-1]
        if local in _XMP:  # element form; a resource URI may sit in an attribute instead
            _put(fields, _XMP[local], "".join(element.itertext()) or next(iter(element.attrib.values()), None))
        for key, value in element.attrib.items():
            if key.rsplit("}", 1)[-1] in _XMP:  # attribute form
                _put(fields, _XMP[key.rsplit("}", 1)[-1]], value)


def _put(fields: dict[str, Any], name: str, value: Any) -> None:
    if (text := _text(value)) and not fields.get(name):
        fields[name] = text


def read_iptc(image: Image.Image, fields: dict[str, Any], problems: list[str]) -> None:
    if image.format not in ("JPEG", "MPO", "TIFF"):
        return
    try:
        iptc = IptcImagePlugin.getiptcinfo(image) or {}
    except Exception as exc:  # noqa: BLE001
        problems.append(f"IPTC block cannot be parsed: {type(exc).__name__}: {exc}")
        return
    for key, name in _IPTC.items():
        value = iptc.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        _put(fields, name, value)


def read_fields(image: Image.Image, data: bytes | None = None) -> tuple[dict[str, Any], list[str]]:
    """Every field this module knows (None when missing) and the problems met reading them;
    `data`: the file's bytes, when at hand (lets a PNG without EXIF skip decoding)."""
    fields: dict[str, Any] = {}
    problems: list[str] = []
    read_exif(image, fields, problems, data)
    read_xmp(image, fields, problems)
    read_iptc(image, fields, problems)
    fields["comment"] = _text(image.info.get("comment"))
    return fields, problems


def metadata_signal(fields: dict[str, Any], problems: list[str], texts: list[str]) -> Signal:
    """`texts`: free text found elsewhere (PNG text chunks) that markers are also matched against."""
    found = {k: v for k, v in fields.items() if v not in (None, False, "")}
    source_type = found.get("digital_source_type")
    category = digital_source_type(source_type)
    markers = match_markers("software", [found.get("software"), found.get("creator_tool"), found.get("iptc_program")])
    markers += match_markers("text", [found.get(k) for k in ("description", "xmp_description", "credit",
                                                              "iptc_caption", "comment", "user_comment")] + texts)
    details = {k: v for k, v in found.items() if k not in ("user_comment", "xmp_user_comment", "xmp")}
    details["markers"] = markers
    if problems and not found:
        return Signal.invalid(NAME, problems[0], problems=problems)
    if not found and not markers:
        return Signal.absent(NAME, "no EXIF, XMP or IPTC fields about the file's origin")
    details["problems"] = problems
    camera = " ".join(v for v in (found.get("make"), found.get("model")) if v)
    if category == "generated":
        claims, reason = "generated", f"IPTC digital source type {source_type.rsplit('/', 1)[-1]}"
    elif generated := [m for m in markers if m["claims"] == "generated"]:
        claims, reason = "generated", f"AI-tool marker {generated[0]['tool']} in {generated[0]['field']}"
    elif category == "capture" or (camera and any(found.get(k) for k in CAMERA_EXPOSURE)):
        claims, reason = "capture", f"camera {camera}" if camera else f"IPTC digital source type {source_type}"
    elif category == "edited" or markers:
        claims, reason = "edited", (f"IPTC digital source type {source_type}" if category == "edited"
                                    else f"AI edit marker {markers[0]['tool']}")
    else:
        claims, reason = "none", "no origin claim; fields: " + ", ".join(sorted(found)[:6])
    if problems:
        reason += f" (partly unreadable: {problems[0]})"
    return Signal(name=NAME, status="present", claims=claims, reason=reason, details=details)

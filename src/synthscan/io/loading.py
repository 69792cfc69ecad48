"""Turn one image file (or its bytes) into the 8-bit RGB array the detectors score.

Every failure raises `ImageLoadError` with a reason code (see `synthscan.io.errors`); an image
that loads but needed care carries warning notices instead. What happens to an image:

* The content decides the format, never the extension: a PNG named `.jpg` is decoded as PNG and
  flagged `mislabelled`. Supported: JPEG (and MPO), PNG, WebP, BMP, TIFF, GIF, AVIF (Pillow
  >= 11.3 built with libavif) and HEIC/HEIF (with pillow-heif: `pip install 'synthscan[heif]'`).
* Only the first frame of an animated GIF/WebP/TIFF or a multi-picture MPO is scanned (`animated`).
* The EXIF orientation is applied, so the image is scanned upright as viewers show it
  (`exif-rotated`).
* The pixels become 8-bit RGB; any other mode is flagged `converted`, naming the original mode:
  - RGB is kept as is; L, 1 and P are expanded to RGB;
  - anything carrying transparency (RGBA, LA, PA, P or L with a transparent colour) is
    composited over white, as viewers show it (`alpha-composited` when a pixel is not opaque);
  - CMYK, YCbCr, LAB and HSV go through Pillow's conversion;
  - 16-bit grey (I;16*) is divided by 257; 32-bit integer grey (I) is kept when it fits in
    0..255 and otherwise divided by 257 as if 16-bit; float grey (F) is read as 0..1 when its
    maximum is <= 1 and as 0..255 otherwise. Values are then rounded and clipped to 0..255.
    The scale depends only on the type (never stretched per image), so equal pixels map equally.
* Limits: a file over `max_bytes` is refused before it is read (`too-large`); an image over
  `max_pixels` is refused from its header, before any pixel is decoded (`decompression-bomb`).
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import io
import os
import stat
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from synthscan.io import errors
from synthscan.io.errors import ImageLoadError
from synthscan.result import Notice

DEFAULT_MAX_PIXELS = 100_000_000
DEFAULT_MAX_BYTES = 200 * 1024 * 1024

# Pillow decoders we allow. Restricting them keeps exotic, loosely-sniffed formats (TGA, PSD, ...)
# from "decoding" random bytes and limits the decoder code that untrusted files can reach.
_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "BMP", "TIFF", "GIF", "AVIF", "HEIF")

# Extension -> the `sniff_format` kind it promises. MPO is a JPEG with extra pictures, so it
# sniffs as JPEG and `.mpo`/`.jpg` are interchangeable.
_EXTENSION_KINDS = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".jfif": "JPEG", ".mpo": "JPEG",
    ".png": "PNG", ".gif": "GIF", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
    ".heic": "HEIF", ".heif": "HEIF", ".avif": "AVIF",
}  # fmt: skip
_IMAGE_KINDS = frozenset(_EXTENSION_KINDS.values())
_NON_IMAGE_NAMES = {"PDF": "a PDF document", "ZIP": "a ZIP archive", "GZIP": "gzip data", "TEXT": "text"}

_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),  # BigTIFF
    (b"MM\x00+", "TIFF"),
    (b"%PDF-", "PDF"),
    (b"PK\x03\x04", "ZIP"),
    (b"PK\x05\x06", "ZIP"),  # empty archive
    (b"\x1f\x8b", "GZIP"),
)
_BMP_HEADER_SIZES = {12, 40, 52, 56, 64, 108, 124}  # "BM" alone is too common in text
# ISO-BMFF brands. mif1/msf1 are generic HEIF brands that AVIF files list too, so an AVIF brand
# anywhere wins over them.
_FTYP_BRANDS = {b"avif": "AVIF", b"avis": "AVIF"} | {
    brand: "HEIF"
    for brand in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1")
}
_SNIFF_BYTES = 512


@dataclass
class LoadedImage:
    path: str
    rgb: np.ndarray  # (H, W, 3) uint8, C-contiguous, writable
    format: str  # Pillow's name for the decoded content, e.g. "JPEG", "MPO", "HEIF"
    original_mode: str
    sha256: str  # of the file's bytes, as read
    n_frames: int
    warnings: list[Notice] = field(default_factory=list)

    @property
    def width(self) -> int:
        return self.rgb.shape[1]

    @property
    def height(self) -> int:
        return self.rgb.shape[0]

    @property
    def animated(self) -> bool:
        return self.n_frames > 1


def sniff_format(head: bytes) -> str | None:
    """Name what the first bytes of a file hold, or None when they are not recognised.

    Image kinds: JPEG (MPO included), PNG, GIF, WEBP, BMP, TIFF, HEIF (HEIC included), AVIF.
    Non-images: PDF, ZIP, GZIP, SVG (a vector drawing: no pixels to scan), TEXT. A few hundred
    bytes are enough; more do no harm.
    """
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:2] == b"BM" and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES:
        return "BMP"
    if head[4:8] == b"ftyp":
        box_end = min(int.from_bytes(head[:4], "big"), len(head))
        brands = [head[8:12]] + [head[i : i + 4] for i in range(16, box_end - 3, 4)]
        kinds = [_FTYP_BRANDS[b] for b in brands if b in _FTYP_BRANDS]
        return "AVIF" if "AVIF" in kinds else (kinds[0] if kinds else None)
    if not _looks_like_text(head):
        return None
    return "SVG" if b"<svg" in head.lower() else "TEXT"


def is_image_content(path: str) -> bool:
    """Whether a file's first bytes are an image's (SVG included); an unreadable file counts as one,
    so that loading it reports why it cannot be read."""
    try:
        with open(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError:
        return True
    return sniff_format(head) in _IMAGE_KINDS | {"SVG"}


def _looks_like_text(head: bytes) -> bool:
    try:
        # Incremental decoding tolerates a multi-byte character cut at the end of `head`.
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(head)
    except UnicodeDecodeError:
        return False
    return bool(text) and all(c.isprintable() or c in "\t\n\r\f\v" for c in text)


def load_image(
    source: str | os.PathLike[str] | bytes,
    *,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> LoadedImage:
    """Decode a file path, or raw `bytes` (then `name` is used in messages and for the extension
    check), into a `LoadedImage`. Raises `ImageLoadError` and nothing else."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        path = name or "<bytes>"
        data = bytes(source)
        _check_size(len(data), max_bytes, path)
    else:
        path = os.fspath(source)
        data = _read(path, max_bytes)
    kind = sniff_format(data[:_SNIFF_BYTES])
    notices: list[Notice] = []

    expected = _EXTENSION_KINDS.get(os.path.splitext(path)[1].lower())
    if expected and kind and kind != expected:
        notices.append(
            Notice(code=errors.MISLABELLED, message=f"named as {expected} but the content is {kind}")
        )
    if hint := _missing_decoder(kind):
        raise ImageLoadError(errors.UNSUPPORTED_FORMAT, hint, path)

    # Our pixel limit replaces Pillow's DecompressionBombWarning, and its other warnings (corrupt
    # EXIF, ...) would only clutter batch output. The filter is process-wide while it lasts (not
    # thread-safe before Python 3.14); at worst a concurrent load prints a warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            im = Image.open(io.BytesIO(data), formats=_decoders())
            width, height = im.size
            if width * height > max_pixels:
                raise ImageLoadError(
                    errors.DECOMPRESSION_BOMB,
                    f"{width}x{height} = {width * height:,} pixels exceeds the limit of {max_pixels:,}",
                    path,
                )
            im.load()
            fmt, mode, n_frames = im.format, im.mode, getattr(im, "n_frames", 1)
            im = _upright(im, notices)
            rgb = _to_rgb(im, notices, path)
        except ImageLoadError:
            raise
        except (Image.DecompressionBombError, MemoryError) as exc:
            # Pillow's own limit (twice Image.MAX_IMAGE_PIXELS) still applies when max_pixels is higher.
            raise ImageLoadError(
                errors.DECOMPRESSION_BOMB, f"too many pixels to decode: {exc}", path
            ) from exc
        except Exception as exc:  # decoders raise anything from OSError to struct.error
            raise _decode_error(exc, data, kind, expected, path) from exc

    if n_frames > 1:
        notices.append(Notice(code=errors.ANIMATED, message=f"{n_frames} frames; only the first was scanned"))
    return LoadedImage(
        path=path,
        rgb=rgb,
        format=fmt,
        original_mode=mode,
        sha256=hashlib.sha256(data).hexdigest(),
        n_frames=n_frames,
        warnings=notices,
    )


def _read(path: str, max_bytes: int) -> bytes:
    """All of a file's bytes, sizes checked from `stat` before reading a byte."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):  # a FIFO or device could block or never end
            what = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise ImageLoadError(errors.NOT_A_FILE, f"is {what}", path)
        _check_size(st.st_size, max_bytes, path)
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)  # +1 notices a file that grew past the limit since stat
    except (FileNotFoundError, NotADirectoryError):
        raise ImageLoadError(errors.NOT_FOUND, "no such file", path) from None
    except PermissionError:
        raise ImageLoadError(errors.PERMISSION_DENIED, "permission denied", path) from None
    except OSError as exc:
        raise ImageLoadError(errors.READ_ERROR, f"cannot read: {exc.strerror or exc}", path) from exc
    _check_size(len(data), max_bytes, path)
    return data


def _check_size(size: int, max_bytes: int, path: str) -> None:
    if size == 0:
        raise ImageLoadError(errors.EMPTY, "file is empty (0 bytes)", path)
    if size > max_bytes:
        raise ImageLoadError(errors.TOO_LARGE, f"{size:,} bytes exceeds the limit of {max_bytes:,}", path)


@functools.cache
def _heif_opener() -> bool:
    """Register pillow-heif's HEIC/HEIF opener on first need; False when it is not installed."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


def _missing_decoder(kind: str | None) -> str | None:
    """Why an image of this kind cannot be decoded here, or None when it can."""
    if kind == "HEIF" and not _heif_opener():
        return "HEIC/HEIF image, but pillow-heif is not installed: pip install 'synthscan[heif]'"
    if kind == "SVG":
        return ("SVG is a vector drawing, not pixels: rasterise it first (e.g. rsvg-convert -o out.png "
                "in.svg) to scan what it renders")
    if kind == "AVIF" and "AVIF" not in _decoders():
        return "AVIF image, but this Pillow cannot decode AVIF: install Pillow >= 11.3 with AVIF support"
    return None


def _decoders() -> list[str]:
    Image.init()  # loads every plugin (cheap once done), so Image.OPEN is complete
    return [f for f in _FORMATS if f in Image.OPEN]


def _decode_error(
    exc: Exception, data: bytes, kind: str | None, expected: str | None, path: str
) -> ImageLoadError:
    """Map whatever a decoder raised to the reason a user can act on."""
    if kind not in _IMAGE_KINDS:
        what = _NON_IMAGE_NAMES.get(kind, "not a recognised image format")
        named = f" (named as {expected})" if expected else ""
        return ImageLoadError(errors.NOT_AN_IMAGE, f"content is {what}{named}", path)
    if isinstance(exc, UnidentifiedImageError):  # starts like `kind` but the header is unreadable
        return ImageLoadError(errors.CORRUPT, f"starts like {kind} but its header cannot be read", path)
    # Decoders report a short file as "image file is truncated", "Truncated File Read", EOFError
    # or "Unexpected end of file" (libheif); WebP's only says it failed, so compare the RIFF
    # container's declared size with the data.
    riff_short = kind == "WEBP" and int.from_bytes(data[4:8], "little") + 8 > len(data)
    text = str(exc).strip()
    if (
        isinstance(exc, EOFError)
        or riff_short
        or any(w in text.lower() for w in ("truncated", "end of file"))
    ):
        return ImageLoadError(errors.TRUNCATED, f"{kind} data ends early ({len(data):,} bytes)", path)
    return ImageLoadError(errors.CORRUPT, f"cannot decode {kind} data: {text}", path)


def _upright(im: Image.Image, notices: list[Notice]) -> Image.Image:
    orientation = im.getexif().get(ExifTags.Base.Orientation, 1)
    if orientation not in range(2, 9):  # 1 is upright; other values are invalid and ignored
        return im
    notices.append(Notice(code=errors.EXIF_ROTATED, message=f"EXIF orientation {orientation} applied"))
    return ImageOps.exif_transpose(im)


def _to_rgb(im: Image.Image, notices: list[Notice], path: str) -> np.ndarray:
    mode = im.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        grey = _grey_to_8bit(np.asarray(im), mode)
        rgb = np.repeat(grey[:, :, None], 3, axis=2)
    else:
        if im.has_transparency_data:
            rgba = im.convert("RGBA")
            if rgba.getchannel("A").getextrema()[0] < 255:
                notices.append(
                    Notice(code=errors.ALPHA_COMPOSITED, message="transparent pixels composited over white")
                )
            im = Image.alpha_composite(Image.new("RGBA", im.size, (255, 255, 255, 255)), rgba)
        try:
            im = im.convert("RGB")
        except ValueError as exc:
            raise ImageLoadError(errors.UNSUPPORTED_MODE, f"cannot convert mode {mode} to RGB", path) from exc
        rgb = np.array(im)  # a writable copy (np.asarray of a PIL image is read-only)
    if mode != "RGB":
        notices.append(Notice(code=errors.CONVERTED, message=f"converted from {mode} to 8-bit RGB"))
    return rgb


def _grey_to_8bit(a: np.ndarray, mode: str) -> np.ndarray:
    a = np.nan_to_num(a.astype(np.float32))
    if mode == "F":
        scale = 255.0 if a.max() <= 1 else 1.0
    elif mode == "I":
        scale = 1 / 257 if a.max() > 255 else 1.0
    else:  # I;16, I;16B, I;16L, I;16N
        scale = 1 / 257
    return np.clip(np.rint(a * scale), 0, 255).astype(np.uint8)

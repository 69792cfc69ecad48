"""Why an image could not be loaded, or what a loaded image needed, as stable codes.

The codes are part of the output (JSON, CSV `error_code`, `warnings`), so they never change
meaning; the messages are for people and may be reworded.
"""

from __future__ import annotations

from synthscan.result import Notice

# Errors: the file is reported and skipped.
NOT_FOUND = "not-found"
NOT_A_FILE = "not-a-file"
PERMISSION_DENIED = "permission-denied"
READ_ERROR = "read-error"
EMPTY = "empty"
TOO_LARGE = "too-large"
DECOMPRESSION_BOMB = "decompression-bomb"
TRUNCATED = "truncated"
CORRUPT = "corrupt"
NOT_AN_IMAGE = "not-an-image"
UNSUPPORTED_FORMAT = "unsupported-format"
UNSUPPORTED_MODE = "unsupported-mode"
# Not an error: a folder walk passed over the file (its status is "skipped", not "error").
UNKNOWN_EXTENSION = "unknown-extension"

REASONS: dict[str, str] = {
    NOT_FOUND: "The path does not exist.",
    NOT_A_FILE: "The path is a directory or another non-regular file.",
    PERMISSION_DENIED: "The file cannot be read with the current permissions.",
    READ_ERROR: "The operating system failed to read the file (I/O error).",
    EMPTY: "The file is 0 bytes long.",
    TOO_LARGE: "The file is larger than the byte-size limit.",
    DECOMPRESSION_BOMB: "The image has more pixels than the pixel limit (checked before decoding).",
    TRUNCATED: "The image data ends before the image does (incomplete download or copy).",
    CORRUPT: "The file starts like an image but its data cannot be decoded.",
    NOT_AN_IMAGE: "The content is not an image (text, PDF, archive, ...), whatever its name.",
    UNSUPPORTED_FORMAT: "An image format that cannot be decoded here (e.g. HEIC without pillow-heif).",
    UNSUPPORTED_MODE: "A pixel layout that cannot be converted to RGB.",
    UNKNOWN_EXTENSION: "A folder scan passed over the file: its extension is not an image format's "
                       "(scan it by name, or use --sniff to look at the content of such files).",
}

# Warnings: the image was scanned, but the result should be read with this in mind.
MISLABELLED = "mislabelled"
ANIMATED = "animated"
CONVERTED = "converted"
ALPHA_COMPOSITED = "alpha-composited"
EXIF_ROTATED = "exif-rotated"

WARNINGS: dict[str, str] = {
    MISLABELLED: "The file extension names a different format than the content; the content won.",
    ANIMATED: "The file holds several frames; only the first was scanned.",
    CONVERTED: "The pixels were converted to 8-bit RGB from another mode (CMYK, P, I;16, ...).",
    ALPHA_COMPOSITED: "Transparent pixels were composited over white, as viewers show them.",
    EXIF_ROTATED: "The EXIF orientation was applied, so the image was scanned upright.",
}


class ImageLoadError(Exception):
    """A file that could not become an RGB array, with one of the codes in `REASONS`."""

    def __init__(self, code: str, message: str, path: str) -> None:
        super().__init__(f"{path}: {message}")
        self.code = code
        self.message = message
        self.path = path

    def notice(self) -> Notice:
        return Notice(code=self.code, message=self.message)

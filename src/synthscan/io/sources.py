"""Expand what the user named (files, folders, `-`, list files, manifest CSVs) into file paths.

Everything is lazy, so a folder of millions of files starts scanning at once. Paths are only
listed here, never checked: a missing or unreadable path is still yielded, so that the loader
reports it (`not-found`, ...) in the same stream as the images instead of aborting the batch.

Rules per input:
* a file is yielded as is, whatever its extension (the loader sniffs the content);
* a folder is walked in sorted order, recursively unless `recursive=False`, yielding files with
  an extension in `IMAGE_EXTENSIONS`, and `.svg` files (so that each gets an `unsupported-format`
  record rather than vanishing); with `sniff=True`, also files with no or another extension whose
  first bytes are an image's (hash-named downloads, `.bin`). Every other file is passed to
  `on_skip`, so that a caller can count and list what was not scanned. Hidden files and folders
  (name starting with ".") are left out and symlinked folders are not followed (no loops);
* `-` reads paths from stdin, one per line; blank lines and lines starting with `#` are skipped;
* a `.csv` file whose header has a `path` column is a manifest: each row's path is yielded,
  relative paths being taken relative to the CSV's folder (a CSV without one is just a file).

`include`/`exclude` are fnmatch globs ("*.png", "raw/*") that filter folder walks only (an
explicitly named path is always yielded). A glob matches a file when it matches either its path
relative to the walked folder (with "/" separators) or its name. With `include`, a file must
match one of them; a file matching any `exclude` is dropped, and so is a folder, whose contents
are then not walked at all ("cache", ".git"-like folders). Exact repeated paths are yielded once.
"""

from __future__ import annotations

import csv
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from fnmatch import fnmatch
from typing import TextIO

from synthscan.io.loading import is_image_content

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff",
    ".heic", ".heif", ".avif", ".mpo",
}  # fmt: skip
# Images that cannot be scanned, walked anyway so that the loader says why.
UNSCANNABLE_EXTENSIONS = {".svg"}


def iter_image_paths(
    inputs: Iterable[str],
    *,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    recursive: bool = True,
    sniff: bool = False,
    on_skip: Callable[[str], None] | None = None,
) -> Iterator[str]:
    """Yield the file paths named by `inputs`, following the module's rules, each once.

    sniff: in folders, also yield files with no or an unknown extension whose content is an
    image. on_skip: called with every file a folder walk passes over for its extension."""
    include, exclude = list(include), list(exclude)
    # One entry per yielded path: far smaller than the images themselves, even for millions.
    seen: set[str] = set()
    for item in inputs:
        item = os.fspath(item)
        if item == "-":
            paths = _read_lines(sys.stdin)
        elif os.path.isdir(item):
            paths = _walk(item, include, exclude, recursive, sniff, on_skip or (lambda _path: None))
        # An unreadable CSV is yielded as a file, so that the loader reports why.
        elif item.lower().endswith(".csv") and os.path.isfile(item) and os.access(item, os.R_OK):
            paths = _manifest(item)
        else:
            paths = iter((item,))
        for path in paths:
            if path not in seen:
                seen.add(path)
                yield path


def read_list_file(path: str) -> Iterator[str]:
    """Paths listed in a text file, one per line, with the same rules as stdin (`-`).

    Relative paths are left relative to the working directory, as with stdin."""
    # surrogateescape lets non-UTF-8 file names through unchanged, as os functions expect them.
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        yield from _read_lines(f)


def _read_lines(stream: TextIO) -> Iterator[str]:
    for line in stream:
        line = line.strip()
        if line and not line.startswith("#"):
            yield line


def _matches(rel: str, name: str, patterns: list[str]) -> bool:
    return any(fnmatch(rel, p) or fnmatch(name, p) for p in patterns)


def _walk(
    root: str, include: list[str], exclude: list[str], recursive: bool, sniff: bool, on_skip: Callable[[str], None]
) -> Iterator[str]:
    def unreadable(exc: OSError) -> None:
        # Not an error for the batch, but files must not vanish silently.
        log.warning("cannot list %s: %s", exc.filename, exc.strerror)

    for folder, dirs, files in os.walk(root, onerror=unreadable):
        rel_folder = os.path.relpath(folder, root).replace(os.sep, "/")
        prefix = "" if rel_folder == "." else rel_folder + "/"
        # Pruning `dirs` in place is how os.walk is told what to descend into, and in which order.
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not _matches(prefix + d, d, exclude))
        if not recursive:
            dirs.clear()
        for name in sorted(files):
            rel = prefix + name
            if name.startswith(".") or (include and not _matches(rel, name, include)) or _matches(rel, name, exclude):
                continue  # what the user left out is not "skipped"
            path = os.path.join(folder, name)
            extension = os.path.splitext(name)[1].lower()
            if extension in IMAGE_EXTENSIONS or extension in UNSCANNABLE_EXTENSIONS or (sniff and is_image_content(path)):
                yield path
            else:
                on_skip(path)


def _manifest(csv_path: str) -> Iterator[str]:
    with open(csv_path, newline="", encoding="utf-8-sig") as f:  # -sig: Excel writes a BOM
        rows = csv.reader(f)
        try:
            header = [h.strip().lower() for h in next(rows, [])]
        except (UnicodeDecodeError, csv.Error):  # binary content named .csv
            header = []
        if "path" not in header:
            yield csv_path  # not a manifest: scanned, and reported, like any other file
            return
        column, base = header.index("path"), os.path.dirname(csv_path)
        for row in rows:
            if len(row) > column and row[column].strip():
                yield os.path.normpath(os.path.join(base, row[column].strip()))

"""Labelled image lists from any supported dataset layout.

`read_dataset` recognises the layout from the folder names (or takes `layout=`), reads it with
its module in `synthscan.data.layouts`, and applies the split/track filters. Layouts: a
synthbench manifest CSV; `real/` + `fake/<generator>/`; CIFAKE; GenImage; ForenSynths.
"""

from __future__ import annotations

from pathlib import Path

from synthscan.data.layouts import LAYOUTS
from synthscan.data.layouts.folder import read as _read_folder
from synthscan.data.layouts.manifest import read_manifest
from synthscan.data.samples import DatasetError, Sample, subfolders
from synthscan.io.sources import IMAGE_EXTENSIONS

__all__ = ["DatasetError", "Sample", "check_two_classes", "detect_layout", "read_dataset", "read_folder", "read_manifest"]


def read_folder(root: str | Path) -> list[Sample]:
    return _read_folder(Path(root))


def detect_layout(source: str | Path) -> str:
    """The name of the first layout whose folder names match `source`; DatasetError if none."""
    source = Path(source)
    if not source.exists():
        raise DatasetError(f"{source}: no such file or folder")
    for name, layout in LAYOUTS.items():
        if layout.matches(source):
            return name
    tried = "".join(f"\n  {name:<12} {layout.EXPECTS}" for name, layout in LAYOUTS.items())
    raise DatasetError(f"{source}: unrecognised dataset layout. Tried:{tried}\nFound: {_describe_contents(source)}")


def read_dataset(
    source: str | Path, *, split: str | None = None, track: str | None = None, layout: str | None = None
) -> list[Sample]:
    """Samples of `source`, of one split when the layout has splits (layouts without splits ignore
    `split`) and of one manifest track."""
    source = Path(source)
    if layout is None:
        layout = detect_layout(source)
    elif layout not in LAYOUTS:
        raise DatasetError(f"unknown dataset layout {layout!r}; known: {', '.join(LAYOUTS)}")
    samples = LAYOUTS[layout].read(source, track=track)
    if split and any(s.split for s in samples):
        samples = [s for s in samples if s.split == split]
    if not samples:
        raise DatasetError(f"{source}: no images" + (f" in split {split!r}" if split else ""))
    return samples


def check_two_classes(samples: list[Sample], what: str) -> None:
    labels = {s.label for s in samples}
    if labels != {"real", "fake"}:
        have = ", ".join(sorted(labels)) or "nothing"
        raise DatasetError(f"{what}: needs both real and fake images, has only {have}")


def _describe_contents(source: Path, shown: int = 8) -> str:
    if source.is_file():
        return f"a file with extension {source.suffix or '(none)'!r}"
    folders = [f"{d.name}/" for d in subfolders(source)]
    files = [p for p in source.iterdir() if p.is_file()]
    images = sum(p.suffix.lower() in IMAGE_EXTENSIONS for p in files)
    listed = ", ".join(folders[:shown]) + (f", ... ({len(folders)} in all)" if len(folders) > shown else "")
    return f"{len(folders)} folder(s) [{listed}] and {len(files)} file(s), {images} of them images"

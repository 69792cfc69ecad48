"""Plain folder layout: `ROOT/real/**` are real photos, `ROOT/fake/<generator>/**` are images of
that generator (images directly in `fake/` get generator "unknown"). No splits, no families."""

from __future__ import annotations

from pathlib import Path

from synthscan.data.samples import ClassFolder, DatasetError, Sample, collect_class_folders, subfolder, subfolders
from synthscan.io.sources import IMAGE_EXTENSIONS

NAME = "folder"
EXPECTS = "expected folders real/ and fake/<generator>/"


def matches(source: Path) -> bool:
    return subfolder(source, "real") is not None or subfolder(source, "fake") is not None


def read(source: Path, **_) -> list[Sample]:
    real, fake = subfolder(source, "real"), subfolder(source, "fake")
    if real is None or fake is None:
        missing = " and ".join(name for name, d in (("real/", real), ("fake/", fake)) if d is None)
        raise DatasetError(f"{source}: folder layout: missing {missing} ({EXPECTS})")
    # fake/ with no generator folders is one generator, "unknown".
    generators = subfolders(fake) or [fake]
    folders = [ClassFolder(real, "real", "real", "real")]
    folders += [ClassFolder(g, "fake", "unknown" if g == fake else g.name, "unknown") for g in generators]
    samples = collect_class_folders(source, NAME, folders)
    if generators != [fake]:  # images lying directly in fake/ are kept too, not silently dropped
        loose = sorted(p for p in fake.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        samples += [Sample(str(p), "fake", "unknown", "unknown") for p in loose]
    return samples

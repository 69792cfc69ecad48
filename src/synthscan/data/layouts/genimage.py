"""GenImage layout: `ROOT/<generator>/train|val/ai|nature/*` (`nature` = real photos).

The generator is the folder under ROOT (ROOT itself when it holds train/ or val/ directly). The
released archives add one level (`ROOT/ADM/imagenet_ai_0508_adm/train/ai`): a generator folder's
train/ and val/ may sit one folder deeper, and the top folder still names the generator.
GenImage's families are not in its layout, so fakes get family "unknown".
"""

from __future__ import annotations

from pathlib import Path

from synthscan.data.samples import ClassFolder, DatasetError, Sample, collect_class_folders, subfolder, subfolders

NAME = "genimage"
EXPECTS = "<generator>/train|val/ai|nature/"
SPLITS = ("train", "val")
CLASSES = {"ai": "fake", "nature": "real"}


def _has_splits(folder: Path) -> bool:
    return any(subfolder(s, c) for name in SPLITS if (s := subfolder(folder, name)) for c in CLASSES)


def _split_parent(generator_dir: Path) -> Path | None:
    """The folder holding train/ and val/: the generator folder itself or its only subfolder that does."""
    if _has_splits(generator_dir):
        return generator_dir
    deeper = [d for d in subfolders(generator_dir) if _has_splits(d)]
    return deeper[0] if len(deeper) == 1 else None


def _generators(source: Path) -> list[tuple[str, Path]]:
    if _has_splits(source):
        return [(source.name, source)]
    return [(d.name, parent) for d in subfolders(source) if (parent := _split_parent(d))]


def matches(source: Path) -> bool:
    return source.is_dir() and bool(_generators(source))


def read(source: Path, **_) -> list[Sample]:
    generators = _generators(source) if source.is_dir() else []
    if not generators:
        raise DatasetError(f"{source}: genimage layout: no <generator>/train|val/ai|nature/ folders found ({EXPECTS})")
    folders, missing = [], []
    for generator, parent in generators:
        for split in SPLITS:
            if (split_dir := subfolder(parent, split)) is None:
                continue
            for name, label in CLASSES.items():
                if (d := subfolder(split_dir, name)) is None:
                    missing.append(f"{split_dir.relative_to(source).as_posix()}/{name}/")
                elif label == "real":
                    folders.append(ClassFolder(d, "real", "real", "real", split))
                else:
                    folders.append(ClassFolder(d, "fake", generator, "unknown", split))
    if missing:
        raise DatasetError(f"{source}: genimage layout: missing {', '.join(missing)} ({EXPECTS})")
    return collect_class_folders(source, NAME, folders)

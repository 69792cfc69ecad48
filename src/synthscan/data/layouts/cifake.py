"""CIFAKE layout: `ROOT/train|test/REAL|FAKE/*`. CIFAKE's test split is used as validation
(split "val"); it names neither generators nor families (its fakes are Stable Diffusion 1.4)."""

from __future__ import annotations

from pathlib import Path

from synthscan.data.samples import ClassFolder, DatasetError, Sample, collect_class_folders, subfolder

NAME = "cifake"
EXPECTS = "train/ and/or test/, each with REAL/ and FAKE/"
SPLITS = {"train": "train", "test": "val"}  # folder -> split
CLASSES = {"REAL": ("real", "real"), "FAKE": ("fake", "unknown")}  # folder -> (label, generator and family)


def matches(source: Path) -> bool:
    return any(subfolder(s, c) for folder in SPLITS if (s := subfolder(source, folder)) for c in CLASSES)


def read(source: Path, **_) -> list[Sample]:
    splits = [(s, SPLITS[name]) for name in SPLITS if (s := subfolder(source, name))]
    if not splits:
        raise DatasetError(f"{source}: cifake layout: missing train/ and test/ ({EXPECTS})")
    folders, missing = [], []
    for split_dir, split in splits:
        for name, (label, origin) in CLASSES.items():
            if (d := subfolder(split_dir, name)) is None:
                missing.append(f"{split_dir.name}/{name}/")
            else:
                folders.append(ClassFolder(d, label, origin, origin, split))
    if missing:
        raise DatasetError(f"{source}: cifake layout: missing {', '.join(missing)} ({EXPECTS})")
    return collect_class_folders(source, NAME, folders)

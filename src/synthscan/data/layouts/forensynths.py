"""ForenSynths layout (Wang et al., CNNDetection): `<class>/0_real|1_fake/*`, optionally grouped
by generator (`<generator>/<class>/...`) and under `train|val|test/`.

Each folder holding `0_real/` or `1_fake/` is one group. Reading the folders above it, from ROOT:
a leading train|val|test names the split (ROOT's own name counts when it is one of those);
then the folder just above the group folder is the generator and the group folder is the
scene class (`Sample.category`). With no generator folder, ROOT's name is the generator (say
`test/stylegan`), unless ROOT is a split folder, then it is "unknown". Reals get generator
"real". Families are not in the layout: "unknown".
"""

from __future__ import annotations

import os
from pathlib import Path

from synthscan.data.samples import SPLIT_NAMES, ClassFolder, DatasetError, Sample, collect_class_folders, subfolder

NAME = "forensynths"
EXPECTS = "[train|val|test/][<generator>/]<class>/0_real|1_fake/"
CLASSES = {"0_real": "real", "1_fake": "fake"}
MAX_DEPTH = 4  # split / generator / class / 0_real


def _groups(source: Path) -> list[Path]:
    """Folders with a 0_real/ or 1_fake/ child, at most MAX_DEPTH levels below `source`."""
    groups = []
    for folder, dirs, _ in os.walk(source):
        depth = len(Path(folder).relative_to(source).parts)
        if any(d in CLASSES for d in dirs):
            groups.append(Path(folder))
        # Never descend into the image folders themselves, nor hidden ones, nor too deep.
        dirs[:] = sorted(d for d in dirs if d not in CLASSES and not d.startswith(".")) if depth < MAX_DEPTH - 1 else []
    return sorted(groups)


def matches(source: Path) -> bool:
    return source.is_dir() and bool(_groups(source))


def _describe(source: Path, group: Path) -> tuple[str, str, str]:
    """(split, generator, category) of a group folder."""
    parts = list(group.relative_to(source).parts)
    split = source.name if source.name in SPLIT_NAMES else ""
    if parts and parts[0] in SPLIT_NAMES:
        split = parts.pop(0)
    category = parts[-1] if parts else ""
    if len(parts) >= 2:
        generator = parts[-2]
    else:
        generator = "unknown" if source.name in SPLIT_NAMES else source.name
    return split, generator, category


def read(source: Path, **_) -> list[Sample]:
    groups = _groups(source) if source.is_dir() else []
    if not groups:
        raise DatasetError(f"{source}: forensynths layout: no 0_real/ or 1_fake/ folders found ({EXPECTS})")
    folders, missing = [], []
    for group in groups:
        split, generator, category = _describe(source, group)
        for name, label in CLASSES.items():
            if (d := subfolder(group, name)) is None:
                missing.append(f"{(group / name).relative_to(source).as_posix()}/")
            elif label == "real":
                folders.append(ClassFolder(d, "real", "real", "real", split, category))
            else:
                folders.append(ClassFolder(d, "fake", generator, "unknown", split, category))
    if missing:
        raise DatasetError(f"{source}: forensynths layout: missing {', '.join(missing)} ({EXPECTS})")
    return collect_class_folders(source, NAME, folders)

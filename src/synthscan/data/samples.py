"""What every dataset layout produces: labelled `Sample`s, and the error raised before training.

`collect_class_folders` is the shared step of the folder-based layouts: it lists the images of
each class folder and refuses, naming them all at once, class folders that hold no image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from synthscan.io.sources import IMAGE_EXTENSIONS

SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class Sample:
    path: str
    label: str  # "real" | "fake"
    generator: str
    family: str  # "real" | "gan" | "diffusion" | ... | "unknown" when the layout does not say
    split: str = ""  # "" when the layout has no splits
    category: str = ""  # what the image shows, when the layout says (ForenSynths' class folders)

    @property
    def y(self) -> int:
        return int(self.label == "fake")


class DatasetError(ValueError):
    """A dataset that cannot be used as given (reported before any work starts)."""


def list_images(folder: Path) -> list[Path]:
    """Image files under `folder` (recursively, hidden ones skipped), sorted."""
    return sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def subfolder(folder: Path, name: str) -> Path | None:
    """The child folder called `name`, ignoring case (CIFAKE writes REAL/, others real/)."""
    if not folder.is_dir():
        return None
    for child in sorted(folder.iterdir()):
        if child.is_dir() and child.name.lower() == name.lower():
            return child
    return None


def subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


@dataclass(frozen=True)
class ClassFolder:
    """A folder whose images all share one label, generator, split and category."""

    folder: Path
    label: str
    generator: str
    family: str
    split: str = ""
    category: str = ""


def collect_class_folders(root: Path, layout: str, folders: list[ClassFolder]) -> list[Sample]:
    samples, empty = [], []
    for c in folders:
        images = list_images(c.folder)
        if not images:
            empty.append(c.folder.relative_to(root).as_posix() + "/")
        samples += [Sample(str(p), c.label, c.generator, c.family, c.split, c.category) for p in images]
    if empty:
        raise DatasetError(
            f"{root}: {layout} layout: empty class folder(s) {', '.join(empty)} "
            f"(no files with an image extension: {', '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    return samples

"""Labelled image lists: a synthbench-style manifest CSV or a folder layout.

Folder layout: `ROOT/real/**/*` are real photos, `ROOT/fake/<generator>/**/*` are generated
images of that generator (family "unknown": only a manifest carries families).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from synthscan.io.sources import IMAGE_EXTENSIONS

@dataclass(frozen=True)
class Sample:
    path: str
    label: str  # "real" | "fake"
    generator: str
    family: str
    split: str = ""

    @property
    def y(self) -> int:
        return int(self.label == "fake")


class DatasetError(ValueError):
    """A dataset that cannot be used as given (reported before any work starts)."""


def read_manifest(path: str | Path, *, split: str | None = None, track: str | None = None) -> list[Sample]:
    path = Path(path)
    root = path.parent
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = {"path", "label"} - set(reader.fieldnames or ())
        if missing:
            raise DatasetError(f"{path}: manifest lacks column(s) {', '.join(sorted(missing))}")
        samples = []
        for row in reader:
            if split and row.get("split") != split:
                continue
            if track and row.get("track") != track:
                continue
            label = row["label"].strip().lower()
            if label not in {"real", "fake"}:
                raise DatasetError(f"{path}: label must be real|fake, got {row['label']!r}")
            generator = row.get("generator") or ("real" if label == "real" else "unknown")
            family = row.get("family") or ("real" if label == "real" else "unknown")
            samples.append(Sample(str(root / row["path"]), label, generator, family, row.get("split", "")))
    return samples


def read_folder(root: str | Path) -> list[Sample]:
    root = Path(root)
    if not (root / "real").is_dir() or not (root / "fake").is_dir():
        raise DatasetError(f"{root}: expected folders real/ and fake/<generator>/")
    samples = [Sample(str(p), "real", "real", "real") for p in _images(root / "real")]
    for gen_dir in sorted(p for p in (root / "fake").iterdir() if p.is_dir()):
        samples += [Sample(str(p), "fake", gen_dir.name, "unknown") for p in _images(gen_dir)]
    return samples


def read_dataset(source: str | Path, *, split: str | None = None, track: str | None = None) -> list[Sample]:
    source = Path(source)
    if source.is_file() and source.suffix.lower() == ".csv":
        samples = read_manifest(source, split=split, track=track)
    elif source.is_dir():
        samples = read_folder(source)
    else:
        raise DatasetError(f"{source}: not a manifest .csv nor a dataset folder")
    if not samples:
        raise DatasetError(f"{source}: no images" + (f" in split {split!r}" if split else ""))
    return samples


def check_two_classes(samples: list[Sample], what: str) -> None:
    labels = {s.label for s in samples}
    if labels != {"real", "fake"}:
        have = ", ".join(sorted(labels)) or "nothing"
        raise DatasetError(f"{what}: needs both real and fake images, has only {have}")


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)

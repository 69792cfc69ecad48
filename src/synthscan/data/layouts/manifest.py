"""synthbench-style manifest: a CSV with `path` and `label` columns, optionally `split`, `track`,
`generator` and `family`. Paths are relative to the CSV's folder. A folder holding a
`manifest.csv` is read through that file."""

from __future__ import annotations

import csv
from pathlib import Path

from synthscan.data.samples import DatasetError, Sample

NAME = "manifest"
EXPECTS = "a .csv file with path and label columns, or a folder holding manifest.csv"


def manifest_path(source: Path) -> Path:
    return source / "manifest.csv" if source.is_dir() else source


def matches(source: Path) -> bool:
    path = manifest_path(source)
    return path.is_file() and path.suffix.lower() == ".csv"


def read(source: Path, *, track: str | None = None) -> list[Sample]:
    path = manifest_path(source)
    if not path.is_file():
        raise DatasetError(f"{source}: manifest layout: no such file {path}")
    return read_manifest(path, track=track)


def read_manifest(path: str | Path, *, split: str | None = None, track: str | None = None) -> list[Sample]:
    path = Path(path)
    root = path.parent
    with path.open(newline="", encoding="utf-8-sig") as f:  # -sig: Excel writes a BOM
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
            samples.append(Sample(str(root / row["path"]), label, generator, family, row.get("split") or ""))
    return samples

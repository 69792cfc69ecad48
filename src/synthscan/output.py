"""Writing scan results: JSON, JSONL or CSV files that are never half-written, and resumable.

While a scan runs, every result is appended (and flushed) to `<out>.partial.jsonl`, so a crash
loses nothing already computed. On close the final file is rendered in the requested format
to a temporary name and atomically renamed over `<out>`. With `resume=True`, results already in
`<out>` or in a leftover `.partial.jsonl` are kept and their paths are skipped; earlier errors
are dropped so that those files are tried again.
"""

from __future__ import annotations

import csv
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from synthscan.result import ScanResult

FORMATS = ("table", "json", "jsonl", "csv")
CSV_FIELDS = list(ScanResult(path="").flat())


def format_from_suffix(path: Path) -> str | None:
    return {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}.get(path.suffix.lower())


def result_record(result: ScanResult) -> dict[str, Any]:
    return result.model_dump(mode="json", exclude_none=True)


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Records from a previous output file of any format (CSV rows come back flat)."""
    fmt = format_from_suffix(path) or "jsonl"
    with path.open(newline="") as f:
        if fmt == "json":
            yield from json.load(f)
        elif fmt == "csv":
            yield from csv.DictReader(f)
        else:
            for line in f:
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError:  # a line cut by a crash: that file is redone
                        return


def temp_beside(path: Path) -> Path:
    """A unique temporary name next to `path`, to write and then `os.replace` onto it. Opened with
    mode "x", the file gets the usual permissions (`tempfile.mkstemp`'s are 0600)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write `text` to a file beside `path`, then rename it onto `path`: readers see the old file
    or the new one, never half of it. The temporary file is removed if writing fails."""
    path = Path(path)
    tmp = temp_beside(path)
    try:
        with tmp.open("x", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


class ResultWriter:
    def __init__(self, out: str | Path, fmt: str, *, resume: bool = False):
        if fmt not in FORMATS[1:]:
            raise ValueError(f"cannot write format {fmt!r} to a file; use json, jsonl or csv")
        self.out = Path(out)
        self.fmt = fmt
        self.partial = self.out.with_name(self.out.name + ".partial.jsonl")
        self.done: set[str] = set()
        previous: list[dict[str, Any]] = []
        if resume:
            for source in (self.out, self.partial):
                if source.exists():
                    for record in read_records(source):
                        if record.get("status") != "error" and record.get("path") not in self.done:
                            self.done.add(record["path"])
                            previous.append(record)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        # Rewrite the kept records to a new file first: a crash now must not lose them.
        tmp = temp_beside(self.out)
        with tmp.open("x") as f:
            f.writelines(json.dumps(record) + "\n" for record in previous)
        os.replace(tmp, self.partial)
        self._partial: TextIO = self.partial.open("a")

    def _append(self, record: dict[str, Any]) -> None:
        self._partial.write(json.dumps(record) + "\n")
        self._partial.flush()

    def write(self, result: ScanResult) -> None:
        self._append(result_record(result))

    def close(self) -> None:
        self._partial.close()
        tmp = temp_beside(self.out)
        with tmp.open("x", newline="") as f:
            records = read_records(self.partial)
            if self.fmt == "jsonl":
                for record in records:
                    f.write(json.dumps(record) + "\n")
            elif self.fmt == "json":
                json.dump(list(records), f, indent=2)
                f.write("\n")
            else:
                writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
                writer.writeheader()
                for record in records:
                    writer.writerow(_flat(record))
        os.replace(tmp, self.out)
        self.partial.unlink()

    def __enter__(self) -> "ResultWriter":
        return self

    def __exit__(self, exc_type, *_) -> None:
        if exc_type is None:
            self.close()
        else:  # keep the partial file for --resume
            self._partial.close()


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    if "status" in record and isinstance(record.get("warnings", []), list):
        return ScanResult.model_validate(record).flat()
    return record  # already a flat CSV row from a resumed CSV file

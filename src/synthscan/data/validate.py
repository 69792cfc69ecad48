"""Check, before training, that every image of a dataset can be read.

`validate_samples` opens each file with `synthscan.io.load_image` (the loader scans use), so a
truncated download or a text file named `.jpg` is reported with the same reason codes as a scan
(`truncated`, `not-an-image`, ...) instead of stopping a run halfway. Time is bounded: the
loader's byte and pixel limits refuse huge files before decoding, and `time_limit_s` stops the
check, reporting how many files were left unchecked.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from synthscan.data.samples import DatasetError, Sample
from synthscan.io import errors
from synthscan.io.errors import ImageLoadError
from synthscan.io.loading import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, load_image


@dataclass(frozen=True)
class Failure:
    path: str
    code: str  # one of synthscan.io.errors.REASONS
    message: str


@dataclass
class ValidationReport:
    total: int
    checked: int = 0
    failures: list[Failure] = field(default_factory=list)

    @property
    def unchecked(self) -> int:
        return self.total - self.checked

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self, shown: int = 10) -> str:
        lines = [f"{len(self.failures)} of {self.total} image(s) cannot be used:"] if self.failures else [
            f"all {self.checked} checked image(s) are readable"
        ]
        lines += [f"  {f.code:<18} {f.path}: {f.message}" for f in self.failures[:shown]]
        if len(self.failures) > shown:
            lines.append(f"  ... and {len(self.failures) - shown} more")
        if self.unchecked:
            lines.append(f"{self.unchecked} image(s) were not checked (time limit reached)")
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        if self.failures:
            raise DatasetError(self.summary())


def _check(path: str, check_images: bool, max_pixels: int, max_bytes: int) -> Failure | None:
    try:
        if check_images:
            load_image(path, max_pixels=max_pixels, max_bytes=max_bytes)
        elif not os.path.isfile(path):
            code = errors.NOT_FOUND if not os.path.exists(path) else errors.NOT_A_FILE
            return Failure(path, code, errors.REASONS[code])
        elif os.path.getsize(path) == 0:
            return Failure(path, errors.EMPTY, errors.REASONS[errors.EMPTY])
    except ImageLoadError as exc:
        return Failure(path, exc.code, exc.message)
    return None


def validate_samples(
    samples: list[Sample],
    *,
    check_images: bool = True,
    progress: Callable[[int, int], None] | None = None,
    time_limit_s: float | None = None,
    workers: int = 2,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ValidationReport:
    """Check every sample's file: decode it (`check_images=True`) or only look that it exists and
    is not empty. `progress(done, total)` is called after each file."""
    paths = list(dict.fromkeys(s.path for s in samples))  # each file once, in order
    report = ValidationReport(total=len(paths))
    deadline = None if time_limit_s is None else time.monotonic() + time_limit_s
    # Decoding releases the GIL, so a few threads overlap file reads and decodes.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for start in range(0, len(paths), 64):  # chunks, so that the deadline is looked at often
            if deadline is not None and time.monotonic() > deadline:
                break
            chunk = paths[start : start + 64]
            for failure in pool.map(lambda p: _check(p, check_images, max_pixels, max_bytes), chunk):
                report.checked += 1
                if failure:
                    report.failures.append(failure)
                if progress:
                    progress(report.checked, report.total)
    return report

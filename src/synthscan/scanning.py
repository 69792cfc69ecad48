"""Scanning: files in, one `ScanResult` per file out, streamed in input order.

Decoding runs in a thread pool one chunk ahead of inference; each chunk is scored by
`CalibratedModel.score_many` (tiles from several images share batches; per-tile logits are
averaged per image and then calibrated, see `synthscan.detectors.tiling` for the tiling rule). A file that fails to load becomes an error
result and the stream goes on.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from synthscan.detectors.scoring import DEFAULT_MODEL, ImageScore, Scorer
from synthscan.io import ImageLoadError, LoadedImage, load_image
from synthscan.io.loading import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from synthscan.provenance.attach import attach_provenance, provenance_sentence
from synthscan.result import Decision, Notice, ScanResult, Tile
from synthscan.stability import DEFAULT_MARGIN, StabilityCheck


class Scanner:
    """A loaded model with its decision rule; reuse one for many scans."""

    def __init__(
        self,
        model: str | Path | Scorer = DEFAULT_MODEL,
        *,
        threshold: float | None = None,
        batch_size: int = 32,
        workers: int = 2,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        explain: bool | Mapping[str, Any] = False,
        provenance: bool | Mapping[str, Any] = True,
        stability: bool | list[str] = False,
        stability_margin: float = DEFAULT_MARGIN,
    ):
        """explain: True, or `synthscan.explain_image` options (methods, maps, maps_dir, target),
        attaches an explanation to each scanned image (`ScanResult.explanation`).
        provenance: True, or `synthscan.provenance.read_provenance` options (show_prompts,
        trust_anchors), reads each file's provenance and fuses it with the pixel verdict; False
        gives the pixel-only verdict.
        stability: True, or variant names, re-scores each image under re-encodings (`synthscan.stability`);
        stability_margin: only images within this many logits outside the uncertain band are
        re-scored (math.inf: all but the already uncertain)."""
        self.model = model if isinstance(model, Scorer) else _load_model(model)
        decision = self.model.info.decision
        self.decision: Decision = decision if threshold is None else decision.with_threshold(threshold)
        self.batch_size = max(1, batch_size)
        self.workers = max(1, workers)
        self.max_pixels = max_pixels
        self.max_bytes = max_bytes
        self.explain_options: dict[str, Any] | None = (
            None if explain is False else ({} if explain is True else dict(explain))
        )
        self.provenance_options: dict[str, Any] | None = (
            None if provenance is False else {"max_bytes": max_bytes} | ({} if provenance is True else dict(provenance))
        )
        self.stability = (StabilityCheck(self, None if stability is True else stability, stability_margin)
                          if stability else None)

    def _load(self, path: str) -> tuple[LoadedImage | ImageLoadError, float]:
        start = time.perf_counter()
        try:
            return load_image(path, max_pixels=self.max_pixels, max_bytes=self.max_bytes), time.perf_counter() - start
        except ImageLoadError as exc:
            return exc, time.perf_counter() - start

    def scan_paths(self, paths: Iterable[str]) -> Iterator[ScanResult]:
        """Results in input order; memory stays bounded by one chunk of images."""
        chunk_size = max(self.batch_size, 8)
        paths = iter(paths)
        with ThreadPoolExecutor(self.workers) as pool:

            def submit() -> list[tuple[str, Future]]:
                return [(p, pool.submit(self._load, p)) for p in itertools.islice(paths, chunk_size)]

            pending = submit()
            while pending:
                upcoming = submit()  # decode the next chunk while this one is scored
                yield from self._score_loaded([(p, f.result()) for p, f in pending])
                pending = upcoming

    def scan_images(self, images: Iterable[LoadedImage]) -> list[ScanResult]:
        """Score images already in memory (e.g. uploaded bytes decoded by `load_image`)."""
        return list(self._score_loaded([(im.path, (im, 0.0)) for im in images]))

    def _score_loaded(self, loaded: list[tuple[str, tuple[LoadedImage | ImageLoadError, float]]]) -> Iterator[ScanResult]:
        policy = self.model.input_policy
        images = {i: item for i, (_, (item, _)) in enumerate(loaded) if isinstance(item, LoadedImage)}
        start = time.perf_counter()
        scores = dict(zip(images, self.model.score_many([im.rgb for im in images.values()],
                                                         batch_size=self.batch_size, decision=self.decision)))
        seconds_per_tile = (time.perf_counter() - start) / max(1, sum(len(s.boxes) for s in scores.values()))
        variants: dict[int, list[ScanResult]] = {}
        if self.stability is not None:  # the re-encoded variants of the chunk's images that need them, batched
            near = [i for i, s in scores.items() if self.stability.skip_reason(s.p_fake, s.verdict) is None]
            variants = dict(zip(near, self.stability.score([images[i] for i in near])))

        for i, (path, (item, load_seconds)) in enumerate(loaded):
            if isinstance(item, ImageLoadError):
                yield ScanResult(path=path, status="error", error=item.notice(), seconds=load_seconds,
                                 model=self.model.name, model_version=self.model.version)
                continue
            score = scores[i]
            warnings = list(item.warnings)
            if score.upscaled:
                warnings.append(Notice(code="upscaled", message=f"smaller than the {policy.crop_size}px crop: upscaled"))
            if score.padded:
                warnings.append(Notice(code="padded", message=f"smaller than the {policy.crop_size}px crop: mirror-padded"))
            if score.scored_by:
                warnings.append(Notice(code="jpeg-recompressed", message=(
                    f"last saved as JPEG at about quality {score.jpeg_quality}: scored by {score.scored_by}, "
                    "the model's head for re-compressed images (trained on re-compressed copies)")))
            result = ScanResult(
                path=path,
                sha256=item.sha256,
                width=item.width,
                height=item.height,
                format=item.format,
                p_fake=score.p_fake,
                verdict=score.verdict,
                threshold=score.threshold,
                model=self.model.name,
                model_version=self.model.version,
                tiles=len(score.boxes),
                padded=score.padded,
                seconds=load_seconds + seconds_per_tile * len(score.boxes),
                warnings=warnings,
                tile_scores=[Tile(box=box, p_fake=p) for box, p in zip(score.boxes, score.tile_p_fake)],
            )
            if self.stability is not None:  # before provenance: fusion starts from the checked pixel verdict
                self.stability.apply(item, result, variants.get(i))
            attach_provenance(result, item, self.provenance_options)
            if self.explain_options is not None:  # after provenance: the narrative tells what decided
                self._explain(item, score, result)
            yield result

    def _explain(self, image: LoadedImage, score: ImageScore, result: ScanResult) -> None:
        """Attach the explanation; a failure becomes a warning so the verdict is not lost."""
        from synthscan.explain import explain_image

        fusion = result.provenance.fusion if result.provenance is not None else None
        note = provenance_sentence(fusion) if fusion is not None else None
        try:
            result.explanation = explain_image(self.model, image, score=score, provenance_note=note,
                                               **self.explain_options)
        except Exception as exc:  # noqa: BLE001 - one bad explanation must not stop a batch
            result.warnings.append(Notice(code="explain-failed", message=f"{type(exc).__name__}: {exc}"))


def _load_model(model: str | Path) -> Scorer:
    # Imported here: the registry imports torch and every detector, which a scan of an ONNX
    # export (`OnnxModel`, a `Scorer` passed in) never needs.
    from synthscan.detectors.registry import load_model

    return load_model(model)


def scan(
    paths: str | Path | Iterable[str | Path],
    model: str | Path | Scorer = DEFAULT_MODEL,
    **options,
) -> list[ScanResult]:
    """Scan files or folders with `model` (a bundled name, a path, or a loaded model).

    >>> results = synthscan.scan(["photo.jpg", "folder/"])          # doctest: +SKIP
    >>> results[0].verdict, results[0].p_fake                        # doctest: +SKIP
    """
    from synthscan.io import iter_image_paths

    inputs = [str(paths)] if isinstance(paths, (str, Path)) else [str(p) for p in paths]
    scanner_options = {k: options.pop(k) for k in list(options) if k in {"threshold", "batch_size", "workers", "max_pixels",
                                                                         "max_bytes", "explain", "provenance", "stability",
                                                                         "stability_margin"}}
    scanner = Scanner(model, **scanner_options)
    return list(scanner.scan_paths(iter_image_paths(inputs, **options)))

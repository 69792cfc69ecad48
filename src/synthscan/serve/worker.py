"""Inference off the event loop: one loaded model, a bounded queue, batches across requests.

Requests put decoded images on the queue and await a future; inference threads take whatever
is waiting (up to `batch_images`, from any request) and score it in one call, so that many
small concurrent requests share forward passes the way one large CLI batch does. A full
queue refuses new images at once (the API answers 429) instead of letting latency grow
without bound.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from synthscan.io import LoadedImage
from synthscan.result import ScanResult

log = logging.getLogger("synthscan.serve")


class QueueFull(Exception):
    pass


@dataclass
class _Job:
    image: LoadedImage
    explain: bool
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future = field(repr=False)

    def resolve(self, value: ScanResult | BaseException) -> None:
        self.loop.call_soon_threadsafe(_settle, self.future, value)


def _settle(future: asyncio.Future, value) -> None:
    if future.done():  # the request timed out or went away meanwhile
        return
    if isinstance(value, BaseException):
        future.set_exception(value)
    else:
        future.set_result(value)


class InferenceWorker:
    """Loads the model in the background (see `ready`), then scores queued images in batches."""

    def __init__(self, model, *, queue_size: int = 64, batch_images: int = 16, batch_size: int = 32,
                 threads: int = 1) -> None:
        self.model_spec = model
        self.queue_size = queue_size
        self.batch_images = max(1, batch_images)
        self.batch_size = batch_size
        self.threads = max(1, threads)
        self.scanner = None
        self.explainer = None
        self.ready = threading.Event()
        self.load_error: str | None = None
        self._jobs: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._stopping = False
        starter = threading.Thread(target=self._load_then_serve, name="synthscan-load", daemon=True)
        starter.start()
        self._threads.append(starter)

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=10)
        self._threads.clear()

    def _load_then_serve(self) -> None:
        from synthscan.scanning import Scanner

        try:
            # provenance=False: an upload has no file on this server; `scan_uploads` reads the
            # provenance from the uploaded bytes instead.
            self.scanner = Scanner(self.model_spec, batch_size=self.batch_size, provenance=False)
            self.explainer = Scanner(self.scanner.model, batch_size=self.batch_size, explain={"maps": "base64"},
                                     provenance=False)
            # Warm up: the first forward pass allocates and picks kernels; no request should pay for it.
            blank = np.full((64, 64, 3), 127, np.uint8)
            self.scanner.scan_images([LoadedImage("<warm-up>", blank, "PNG", "RGB", "", 1)])
        except Exception as exc:  # noqa: BLE001 - reported by /readyz and in the log
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.error("cannot load model %s: %s", self.model_spec, self.load_error)
            return
        log.info("model %s %s loaded and warm", self.scanner.model.name, self.scanner.model.version)
        self.ready.set()
        for i in range(self.threads):
            t = threading.Thread(target=self._serve, name=f"synthscan-infer-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    @property
    def queued(self) -> int:
        return len(self._jobs)

    def submit(self, images: list[LoadedImage], explain: bool) -> list[asyncio.Future]:
        """Queue all of `images` or none of them (QueueFull); await the returned futures."""
        loop = asyncio.get_running_loop()
        jobs = [_Job(im, explain, loop, loop.create_future()) for im in images]
        with self._cond:
            if len(self._jobs) + len(jobs) > self.queue_size:
                raise QueueFull(f"{len(self._jobs)} image(s) already waiting (limit {self.queue_size})")
            self._jobs.extend(jobs)
            self._cond.notify()
        return [j.future for j in jobs]

    def _take_batch(self) -> list[_Job] | None:
        """Up to `batch_images` waiting jobs of one kind (plain or explained), oldest first."""
        with self._cond:
            while not self._jobs and not self._stopping:
                self._cond.wait()
            if self._stopping:
                return None
            kind = self._jobs[0].explain
            batch, keep = [], deque()
            while self._jobs and len(batch) < self.batch_images:
                job = self._jobs.popleft()
                (batch if job.explain == kind else keep).append(job)
            self._jobs.extendleft(reversed(keep))
            if self._jobs:
                self._cond.notify()  # another thread can take the rest
            return batch

    def _serve(self) -> None:
        while (batch := self._take_batch()) is not None:
            batch = [j for j in batch if not j.future.done()]  # skip requests that gave up
            if not batch:
                continue
            scanner = self.explainer if batch[0].explain else self.scanner
            try:
                results = scanner.scan_images([j.image for j in batch])
            except Exception as exc:  # noqa: BLE001 - fail these requests, keep serving
                log.exception("inference failed")
                for job in batch:
                    job.resolve(RuntimeError(f"inference failed: {type(exc).__name__}: {exc}"))
                continue
            for job, result in zip(batch, results):
                job.resolve(result)

"""`synthscan scan --engine ray`: shards of inputs scored by a pool of Ray Data actors.

The driver lists the inputs once into OUT_DIR's plan (see `shards`), then feeds the numbers of the
shards not yet written to `Dataset.map_batches` over a pool of `ShardScorer` actors. Each actor
loads the model once, scores one shard at a time with the ordinary `Scanner` (same tiling,
calibration and decision as `synthscan scan`, so the same scores), and writes the shard's Parquet
file itself. Ray Data restarts an actor that dies and retries its shard (max_restarts and
max_task_retries default to -1 for actor pools); since a shard becomes visible only by an atomic
rename, a retried shard replaces nothing and no image appears twice.

Workers get the model as bytes through Ray's object store (a bundled model by name: it ships with
the package), so a model file on the driver's disk need not exist on the workers.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from synthscan.scale import shards

DEFAULT_SHARD_SIZE = 256


def model_payload(model: str, runtime: str) -> dict:
    """What actors need to load `model`: a bundled name, or the model's files as bytes."""
    from synthscan.detectors.registry import bundled_weights_dir, resolve_model_path

    if runtime == "torch":
        json_path = resolve_model_path(model)
        if json_path.parent == bundled_weights_dir():
            return {"runtime": "torch", "name": json_path.stem}
        files = [json_path, json_path.with_suffix(".safetensors")]
    else:
        from synthscan.runtime.onnx_model import load_onnx_model

        json_path = load_onnx_model(model).json_path
        files = [json_path, json_path.with_suffix(".onnx")]
    return {"runtime": runtime, "json": json_path.name, "files": {p.name: p.read_bytes() for p in files}}


def _load_payload(payload: dict, workdir: str):
    if "name" in payload:
        return payload["name"]
    for name, data in payload["files"].items():
        Path(workdir, name).write_bytes(data)
    json_path = Path(workdir, payload["json"])
    if payload["runtime"] == "onnx":
        from synthscan.runtime.onnx_model import OnnxModel

        return OnnxModel(json_path, threads=1)
    return str(json_path)


class ShardScorer:
    """A Ray Data actor: loads the model once, then scores and writes whole shards."""

    def __init__(self, out_dir: str, payload: dict, scanner_options: dict):
        from synthscan.scanning import Scanner

        if payload["runtime"] == "torch":  # an ONNX actor never imports torch
            import torch

            torch.set_num_threads(1)  # one actor per CPU: more threads would fight over the cores
        self.out_dir = out_dir
        self.workdir = tempfile.mkdtemp(prefix="synthscan-actor-")
        self.scanner = Scanner(_load_payload(payload, self.workdir), workers=1, **scanner_options)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        counts = {"shard": [], "files": [], "errors": []}
        for shard in batch["shard"].tolist():
            results = self._scan(shards.shard_paths(self.out_dir, shard))
            shards.write_shard(self.out_dir, shard, results)
            counts["shard"].append(shard)
            counts["files"].append(len(results))
            counts["errors"].append(sum(not r.ok for r in results))
        return {k: np.array(v, dtype=np.int64) for k, v in counts.items()}

    def _scan(self, paths: list[str]) -> list:
        """Local paths are read directly; URIs (s3://...) are copied to a scratch folder first."""
        local = {p: p if "://" not in p else self._fetch(p, i) for i, p in enumerate(paths)}
        results = list(self.scanner.scan_paths(list(local.values())))
        back = {v: k for k, v in local.items()}
        for r in results:
            r.path = back[r.path]
        shutil.rmtree(Path(self.workdir, "fetched"), ignore_errors=True)
        return results

    def _fetch(self, uri: str, index: int) -> str:
        """Copy a remote file locally (a failed read leaves no file: the scan reports `not-found`)."""
        import pyarrow.fs as pafs

        target = Path(self.workdir, "fetched", f"{index}-{os.path.basename(uri)}")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            fs, path = pafs.FileSystem.from_uri(uri)
            with fs.open_input_stream(path) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
        except (OSError, ValueError):
            target.unlink(missing_ok=True)
        return str(target)


def run_ray_scan(
    paths: Callable[[], Iterable[str]],
    out_dir: str,
    *,
    model: str = "synthscan-default",
    runtime: str = "torch",
    actors: int | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    scanner_options: dict | None = None,
    on_shard: Callable[[int, int, int], None] | None = None,
) -> dict:
    """Scan into OUT_DIR on the Ray cluster that `ray.init` connected to; returns the run's counts.

    `paths` is called only when OUT_DIR has no plan yet (a rerun resumes the earlier plan).
    `on_shard(shard, files, errors)` is called as shards complete.
    """
    import ray

    start = time.perf_counter()
    total = shards.plan_shards(out_dir)
    resumed = total is not None
    if total is None:
        total = shards.write_plan(out_dir, paths(), shard_size)
    pending = sorted(set(range(total)) - shards.done_shards(out_dir))
    summary = {"shards": total, "skipped_shards": total - len(pending), "scanned_shards": 0, "files": 0,
               "errors": 0, "resumed": resumed}
    if pending:
        actors = actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
        ds = ray.data.from_items([{"shard": s} for s in pending], override_num_blocks=len(pending))
        ds = ds.map_batches(ShardScorer, batch_size=1, num_cpus=1,
                            compute=ray.data.ActorPoolStrategy(size=min(actors, len(pending))),
                            fn_constructor_kwargs={"out_dir": out_dir, "payload": model_payload(model, runtime),
                                                   "scanner_options": scanner_options or {}})
        for row in ds.iter_rows():
            summary["scanned_shards"] += 1
            summary["files"] += int(row["files"])
            summary["errors"] += int(row["errors"])
            if on_shard:
                on_shard(int(row["shard"]), int(row["files"]), int(row["errors"]))
    summary["seconds"] = round(time.perf_counter() - start, 2)
    if len(shards.done_shards(out_dir)) == total:
        shards.write_summary(out_dir, summary)
    return summary

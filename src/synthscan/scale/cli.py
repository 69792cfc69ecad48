"""The CLI side of `synthscan scan --engine ray`: checks, Ray start-up, progress, exit code."""

from __future__ import annotations

import itertools
from pathlib import Path

from rich.console import Console

from synthscan.result import ExitCode

INSTALL_HINT = "--engine ray needs Ray: pip install 'synthscan[ray]'"


def ray_available(err: Console) -> bool:
    try:
        import pyarrow  # noqa: F401
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        err.print(f"error: {INSTALL_HINT}", markup=False, highlight=False)
        return False
    return True


def connect(ray_address: str | None) -> None:
    """Join the cluster at `ray_address` (auto, ray://HOST:10001), or start Ray on this machine."""
    import ray

    if not ray.is_initialized():
        ray.init(address=ray_address, include_dashboard=False, logging_level="WARNING", log_to_driver=True)


def scan_on_ray(paths: list[str], out: Path | None, *, model: str, runtime: str, ray_address: str | None,
                list_file: Path | None, include: list[str], exclude: list[str], threshold: float | None,
                batch_size: int, max_pixels: int, max_bytes: int, err: Console,
                actors: int | None = None, shard_size: int | None = None) -> int:
    """Run the scan; returns the exit code (0 all scanned, 1 some files failed, 2 usage error)."""
    if out is None:
        err.print("error: --engine ray needs --out OUT_DIR (a folder, or a URI such as s3://bucket/run)")
        return ExitCode.USAGE
    if runtime not in {"torch", "onnx"}:
        err.print("error: --runtime must be torch or onnx")
        return ExitCode.USAGE
    if not ray_available(err):
        return ExitCode.USAGE
    from synthscan.io import iter_image_paths, read_list_file
    from synthscan.scale import shards
    from synthscan.scale.ray_scan import DEFAULT_SHARD_SIZE, model_payload, run_ray_scan

    out_dir = str(out)
    try:
        model_payload(model, runtime)  # fail before starting Ray when the model cannot be found
    except (FileNotFoundError, KeyError, ValueError, ImportError) as exc:
        err.print(f"error: {exc}", markup=False)
        return ExitCode.USAGE
    planned = shards.plan_shards(out_dir)
    if planned is None:
        sources = itertools.chain(iter_image_paths(paths, include=include, exclude=exclude),
                                  read_list_file(str(list_file)) if list_file else ())
        first = list(itertools.islice(sources, 1))
        if not first:
            err.print("error: no images given (pass files, folders, manifests or --list FILE)")
            return ExitCode.USAGE
        listing = lambda: itertools.chain(first, sources)  # noqa: E731
    else:
        ignored = ("; its inputs are scanned, not the ones given now (use a new --out for other files)"
                   if paths or list_file else "")
        err.print(f"resuming: {out_dir} holds a plan of {planned} shard(s){ignored}", highlight=False)
        listing = None
    options = {"threshold": threshold, "batch_size": batch_size, "max_pixels": max_pixels, "max_bytes": max_bytes}
    connect(ray_address)
    try:
        summary = run_ray_scan(listing, out_dir, model=model, runtime=runtime, actors=actors,
                               shard_size=shard_size or DEFAULT_SHARD_SIZE, scanner_options=options)
    except KeyboardInterrupt:
        err.print(f"interrupted: finished shards are kept in {out_dir}; rerun the same command to resume",
                  highlight=False)
        return 130
    err.print(f"{summary['scanned_shards']} shard(s) scanned ({summary['files']} files, {summary['errors']} "
              f"failed), {summary['skipped_shards']} already done; results in {out_dir}", highlight=False)
    return ExitCode.SOME_FAILED if summary["errors"] else ExitCode.OK


def train_with_ray(detector: str, data: Path, out: Path, *, ray_address: str | None, num_workers: int,
                   storage_path: str | None, use_gpu: bool, name: str, version: str, track: str | None,
                   exclude_families: tuple[str, ...], train_config, detector_config: dict) -> int:
    """`synthscan train --engine ray`: returns the exit code (0 trained, 2 usage or data error)."""
    err = Console(stderr=True)
    try:
        import ray.train  # noqa: F401
    except ImportError:
        err.print(f"error: {INSTALL_HINT.replace('--engine ray', 'train --engine ray')}", markup=False, highlight=False)
        return ExitCode.USAGE
    from synthscan.data.datasets import DatasetError
    from synthscan.scale.ray_train import check_trainable, train_on_ray
    from synthscan.train.recipe import split_samples

    try:
        check_trainable(detector)
        train, val = split_samples(data, track=track, exclude_families=exclude_families)
    except (DatasetError, KeyError, ValueError, OSError) as exc:
        err.print(f"error: {exc}", markup=False)
        return ExitCode.USAGE
    connect(ray_address)
    try:
        train_on_ray(detector, train, val, out, name=name, version=version, num_workers=num_workers, use_gpu=use_gpu,
                     storage_path=storage_path, train_config=train_config, detector_config=detector_config,
                     progress=lambda line: err.print(line, markup=False, highlight=False),
                     record={"data": str(data), "track": track, "exclude_families": list(exclude_families)})
    except DatasetError as exc:
        err.print(f"error: {exc}", markup=False)
        return ExitCode.USAGE
    return ExitCode.OK

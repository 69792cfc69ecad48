"""Ray scale-out overhead, memory per actor, and onnxruntime vs torch speed on this machine.

Prints:
- `synthscan scan`'s engine (`Scanner`, in-process) on N files: images/s with torch's default
  threads (one per core: what `synthscan scan` does) and with one torch thread. On a machine that
  other jobs also load, several torch threads can be far slower than one (they wait for each other
  on busy cores), so both are shown and Ray is compared with the faster;
- `scan --engine ray` on a local Ray with 2 CPUs (2 actors, one torch thread each) on the same files:
  Ray start-up seconds, then images/s from submitting the job to the last shard written (actor
  start-up and model loading included), the ratio to the local figure, and the peak resident memory
  of each actor process;
- per bundled model, images/s with `--runtime onnx` vs torch on the first 300 files, both limited
  to one thread (a per-core comparison, as in a Ray actor).

Files: the first N 256px images of ../shared/synthbench when present, else N synthetic 256x256
JPEGs in a temporary folder.

    python benchmarks/scale.py [--files 2000] [--model synthscan-default]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path


from synthscan.scanning import Scanner
from throughput import synthetic_jpegs  # benchmarks/ is on the path when a script here runs

SYNTHBENCH = Path(__file__).resolve().parents[1] / ".." / "shared" / "synthbench"


def inputs(n: int, scratch: Path) -> tuple[list[str], str]:
    manifest = SYNTHBENCH / "manifest.csv"
    if manifest.exists():
        import csv

        with manifest.open() as f:
            rows = [r["path"] for r in csv.DictReader(f) if r["track"] == "256"]
        return [str(SYNTHBENCH / p) for p in rows[:n]], f"synthbench ({min(n, len(rows))} of {len(rows)} 256px files)"
    return synthetic_jpegs(n, scratch, quality=90), f"{n} synthetic 256x256 JPEGs"


def local_rate(model, paths: list[str], threads: int | None = None) -> float:
    import torch

    default = torch.get_num_threads()
    torch.set_num_threads(threads or default)
    try:
        return _rate(model, paths)
    finally:
        torch.set_num_threads(default)


def _rate(model, paths: list[str]) -> float:
    scanner = Scanner(model)
    start = time.perf_counter()
    count = sum(1 for _ in scanner.scan_paths(paths))
    return count / (time.perf_counter() - start)


def actor_rss(stop: threading.Event, peaks: dict[int, int]) -> None:
    """Poll the resident memory of this process's descendants that are scan actors."""
    while not stop.is_set():
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if b"ShardScorer" not in (proc / "cmdline").read_bytes():
                    continue
                status = (proc / "status").read_text()
            except OSError:
                continue
            if int(status.split("PPid:")[1].split()[0]) in descendants():
                rss = int(status.split("VmRSS:")[1].split()[0]) * 1024
                peaks[int(proc.name)] = max(peaks.get(int(proc.name), 0), rss)
        time.sleep(0.2)


def descendants() -> set[int]:
    parents = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                parents[int(proc.name)] = int((proc / "status").read_text().split("PPid:")[1].split()[0])
            except OSError:
                pass
    mine, frontier = {os.getpid()}, {os.getpid()}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - mine
        mine |= frontier
    return mine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--model", default="synthscan-default")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        paths, what = inputs(args.files, scratch)
        print(f"files: {what}; cores: {os.cpu_count()}; load average before: {os.getloadavg()[0]:.1f}")
        import torch

        one = local_rate(args.model, paths, threads=1)
        print(f"local Scanner ({args.model}), 1 torch thread: {one:.1f} images/s")

        import ray

        from synthscan.scale.ray_scan import run_ray_scan

        start = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        ray.data.DataContext.get_current().enable_progress_bars = False
        print(f"ray start-up: {time.perf_counter() - start:.1f} s")
        stop, peaks = threading.Event(), {}
        poller = threading.Thread(target=actor_rss, args=(stop, peaks), daemon=True)
        poller.start()
        summary = run_ray_scan(lambda: paths, str(scratch / "ray-out"), model=args.model, actors=2)
        stop.set()
        poller.join()
        ray.shutdown()
        ray_rate = summary["files"] / summary["seconds"]
        print(f"ray, 2 actors: {ray_rate:.1f} images/s ({summary['files']} files, {summary['shards']} shards, "
              f"{summary['seconds']} s incl. actor start-up)")
        default = local_rate(args.model, paths)
        print(f"local Scanner, {torch.get_num_threads()} torch threads (synthscan scan's default): {default:.1f} images/s")
        print(f"ray / local: {ray_rate / max(one, default):.2f} (vs the faster local run), "
              f"{ray_rate / default:.2f} (vs the default threads)")
        print("peak RSS per actor: " + ", ".join(f"{rss / 2**20:.0f} MiB" for rss in sorted(peaks.values())))

        from synthscan.runtime.onnx_export import export_onnx
        from synthscan.runtime.onnx_model import load_onnx_model

        sample = paths[:300]
        for name in ("synthscan-default", "synthscan-npr"):
            torch_rate = local_rate(name, sample, threads=1)
            onnx_rate = local_rate(load_onnx_model(export_onnx(name, scratch / "onnx"), threads=1), sample, threads=1)
            print(f"{name}: torch {torch_rate:.1f} images/s, onnxruntime {onnx_rate:.1f} images/s, "
                  f"onnx/torch {onnx_rate / torch_rate:.2f}")
        print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

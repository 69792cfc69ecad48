"""Speed and memory of a model on this machine (default: the bundled default model).

Prints, with the machine's core count and torch's thread count:
- detector-only images/second on 256x256 crops (batched), and batch-1 latency;
- whole-file images/second: JPEG files decoded, tiled and scored by `Scanner`;
- the time to scan one 12-megapixel JPEG (4000x3000);
- peak resident memory of a separate process that scans N files (default 2,000) to a JSONL file.

Files come from ../shared/synthbench when present, else synthetic 256x256 JPEGs are made in a
temporary folder (decode cost is then comparable; the verdicts are meaningless).

    python benchmarks/throughput.py [--model synthscan-default] [--files 2000]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from synthscan.detectors.registry import load_model
from synthscan.scanning import Scanner

SYNTHBENCH = Path(__file__).resolve().parents[1] / ".." / "shared" / "synthbench" / "images256"


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def bench_files(n: int, tmp: Path) -> list[str]:
    files = sorted(str(p) for p in SYNTHBENCH.rglob("*.jpg"))[:n] if SYNTHBENCH.exists() else []
    return files if len(files) >= n else synthetic_jpegs(n, tmp)


def synthetic_jpegs(n: int, folder: Path, quality: int = 95) -> list[str]:
    """N seeded random 256x256 JPEGs in `folder` (decode cost like real files; verdicts meaningless)."""
    rng = np.random.default_rng(0)
    files = []
    for i in range(n):
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(path, quality=quality)
        files.append(str(path))
    return files


def peak_rss_of_scan(model: str, list_file: Path, out: Path) -> float:
    """Peak RSS (MB) of a child process running `synthscan scan` over the list."""
    code = (
        "import resource, sys; from synthscan.cli.main import app\n"
        f"sys.argv = ['synthscan', 'scan', '--model', {model!r}, '--list', {str(list_file)!r}, '--out', {str(out)!r}]\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description="synthscan throughput benchmark")
    ap.add_argument("--model", default="synthscan-default")
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()

    model = load_model(args.model)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, "
          f"torch {torch.__version__} with {torch.get_num_threads()} threads")
    print(f"model: {model.name} {model.version} ({model.info.detector}, crop {model.input_policy.crop_size})")

    crop = model.input_policy.crop_size
    batch = torch.rand(args.batch_size, 3, 256, 256)
    if model.input_policy.mode == "resize":  # one pass of the image resized to the crop
        batch = torch.nn.functional.interpolate(batch, size=(crop, crop), mode="bilinear", antialias=True)
    elif crop != 256:  # a 256x256 image is several tiles for smaller crops
        batch = batch.unfold(2, crop, crop).unfold(3, crop, crop).permute(0, 2, 3, 1, 4, 5).reshape(-1, 3, crop, crop)
    per_batch = timed(lambda: model.logits(batch), 5)
    print(f"detector only, 256x256 images, batch {args.batch_size}: {args.batch_size / per_batch:.1f} images/s")
    single = batch[: max(1, len(batch) // args.batch_size)]
    print(f"detector only, batch 1 latency: {timed(lambda: model.logits(single), 20) * 1000:.1f} ms")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = bench_files(args.files, tmp)
        print(f"files: {len(files)} {'synthbench JPEGs' if SYNTHBENCH.exists() else 'synthetic JPEGs'}")
        scanner = Scanner(model, batch_size=args.batch_size)
        sample = files[:500]
        start = time.perf_counter()
        n_ok = sum(r.ok for r in scanner.scan_paths(sample))
        elapsed = time.perf_counter() - start
        print(f"whole files (decode + tile + score), {len(sample)} files: {len(sample) / elapsed:.1f} images/s ({n_ok} ok)")
        start = time.perf_counter()
        for path in files[:20]:
            list(scanner.scan_paths([path]))
        print(f"whole file, one at a time: {(time.perf_counter() - start) / 20 * 1000:.1f} ms per image")
        big = tmp / "12mp.jpg"  # 4000x3000, smooth content so the JPEG has a camera-like size
        Image.fromarray(np.asarray(Image.open(files[0]).convert("RGB").resize((4000, 3000), Image.BICUBIC))).save(big, quality=90)
        print(f"a 12-megapixel JPEG (4000x3000), decode + tile + score: {timed(lambda: list(scanner.scan_paths([str(big)])), 3):.2f} s")

        list_file = tmp / "files.txt"
        list_file.write_text("\n".join(files) + "\n")
        start = time.perf_counter()
        rss = peak_rss_of_scan(args.model, list_file, tmp / "out.jsonl")
        print(f"`synthscan scan` over {len(files)} files: peak RSS {rss:.0f} MB, {time.perf_counter() - start:.0f} s wall")


if __name__ == "__main__":
    main()

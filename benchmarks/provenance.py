"""Time that reading provenance adds per file, over `examples/` and a folder of generated files
with provenance (C2PA-signed, generator parameters, SD watermarks, camera EXIF, XMP; 512 to
1024 px, made with tests/provenance_files.py in a temporary folder).

Prints ms per file, mean and median, for:
- in a scan: the file's bytes read again and every signal read, the pixels already decoded (what
  `synthscan scan` adds per file; `--no-metadata` removes it);
- standalone: the same plus decoding the pixels for the watermark (`synthscan provenance`);
and the watermark decoder's share of the first.

    python benchmarks/provenance.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the file makers the tests use

import provenance_files as pf  # noqa: E402

from synthscan.io import iter_image_paths, load_image  # noqa: E402
from synthscan.provenance import read_provenance  # noqa: E402
from synthscan.provenance.watermark import watermark_signal  # noqa: E402


def make_files(folder: Path) -> None:
    sizes = [(512, 512), (1024, 1024), (768, 512)]
    for i, (h, w) in enumerate(sizes):
        rgb = pf.picture(h, w, seed=i)
        made = {
            "c2pa_ai.jpg": pf.c2pa_signed(pf.encode(rgb, "JPEG", quality=92), "JPEG", pf.AI_TYPE),
            "c2pa_camera.png": pf.c2pa_signed(pf.encode(rgb, "PNG"), "PNG", pf.CAMERA_TYPE),
            "webui.png": pf.webui_png(rgb), "comfyui.png": pf.comfyui_png(rgb), "webui.webp": pf.webui_jpeg(rgb, "WEBP"),
            "watermark.png": pf.encode(pf.sd_watermarked(rgb), "PNG"), "camera.jpg": pf.camera_jpeg(rgb),
            "xmp.jpg": pf.with_xmp(rgb, "JPEG", pf.xmp_packet(pf.AI_TYPE)), "plain.jpg": pf.encode(rgb, "JPEG", quality=90),
        }
        for name, data in made.items():
            (folder / f"{h}x{w}_{name}").write_bytes(data)


def ms(samples: list[float]) -> str:
    return f"mean {1000 * statistics.mean(samples):6.2f} ms, median {1000 * statistics.median(samples):6.2f} ms"


def measure(paths: list[str], repeats: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"scan": [], "standalone": [], "watermark": []}
    for path in paths:
        rgb = load_image(path).rgb
        read_provenance(Path(path).read_bytes(), rgb)  # warm-up (imports, C2PA library)
        for _ in range(repeats):
            start = time.perf_counter()
            read_provenance(Path(path).read_bytes(), rgb)
            times["scan"].append(time.perf_counter() - start)
            start = time.perf_counter()
            read_provenance(Path(path).read_bytes())
            times["standalone"].append(time.perf_counter() - start)
            start = time.perf_counter()
            watermark_signal(rgb)
            times["watermark"].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPU cores; {args.repeats} repeats per file")
    with tempfile.TemporaryDirectory() as tmp:
        make_files(Path(tmp))
        groups = {"examples/": list(iter_image_paths([str(ROOT / "examples")])), "generated": list(iter_image_paths([tmp]))}
        everything: dict[str, list[float]] = {"scan": [], "standalone": [], "watermark": []}
        for name, paths in groups.items():
            times = measure(paths, args.repeats)
            print(f"{name:10s} {len(paths):3d} files  in a scan: {ms(times['scan'])}  |  standalone: "
                  f"{ms(times['standalone'])}  |  watermark alone: {ms(times['watermark'])}")
            for key in everything:
                everything[key] += times[key]
        print(f"{'all':10s} {sum(map(len, groups.values())):3d} files  in a scan: {ms(everything['scan'])}  |  "
              f"standalone: {ms(everything['standalone'])}  |  watermark alone: {ms(everything['watermark'])}")


if __name__ == "__main__":
    main()

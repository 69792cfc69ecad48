"""Write the real example photographs to ``examples/real/``.

The four colour photographs bundled with scikit-image whose docstrings state a
public-domain or CC0 licence are saved at their native resolution (no resizing,
no cropping) as JPEG quality 95 -- the same encoding ``make_generated.py`` uses,
so the file format gives nothing away.

    python examples/make_real.py --out examples/real
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

# output name -> skimage.data function name (licences: see examples/README.md)
REAL_IMAGES = {
    "astronaut_eileen_collins_nasa.jpg": "astronaut",
    "coffee_cup_michetti.jpg": "coffee",
    "chelsea_the_cat_vanderwalt.jpg": "chelsea",
    "falcon9_dscovr_launch_spacex.jpg": "rocket",
}

# Shared with make_generated.py: baseline JPEG, quality 95, 4:2:0 chroma subsampling.
JPEG_KWARGS = {"format": "JPEG", "quality": 95, "subsampling": 2, "optimize": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("examples/real"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, fn in REAL_IMAGES.items():
        arr = np.ascontiguousarray(getattr(data, fn)())
        assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3, (fn, arr.shape)
        Image.fromarray(arr, "RGB").save(args.out / name, **JPEG_KWARGS)
        print(f"{args.out / name}  <- skimage.data.{fn}()  {arr.shape[1]}x{arr.shape[0]}")


if __name__ == "__main__":
    main()

"""Image input: expand user inputs into paths, and load each path into an RGB array."""

from synthscan.io.errors import ImageLoadError
from synthscan.io.loading import LoadedImage, load_image, sniff_format
from synthscan.io.sources import iter_image_paths, read_list_file

__all__ = [
    "ImageLoadError",
    "LoadedImage",
    "iter_image_paths",
    "load_image",
    "read_list_file",
    "sniff_format",
]

"""Tests for synthscan.io: every image is made here, in tmp_path, with PIL and numpy."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import sys
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile, features

from synthscan.io import (
    ImageLoadError,
    errors,
    iter_image_paths,
    load_image,
    loading,
    read_list_file,
    sniff_format,
)
from synthscan.result import Notice

W, H = 40, 30


def noise(h: int = H, w: int = W) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


def save(tmp_path, name: str, im: Image.Image, fmt: str | None = None, **kw) -> str:
    path = str(tmp_path / name)
    im.save(path, fmt, **kw)
    return path


def codes(loaded) -> list[str]:
    return [w.code for w in loaded.warnings]


def load_error(source, **kw) -> ImageLoadError:
    with pytest.raises(ImageLoadError) as info:
        load_image(source, **kw)
    return info.value


# --- formats --------------------------------------------------------------------------------

LOSSLESS = [
    ("PNG", "a.png", {}),
    ("BMP", "a.bmp", {}),
    ("TIFF", "a.tiff", {}),
    ("WEBP", "a.webp", {"lossless": True}),
]


@pytest.mark.parametrize("fmt, name, kw", LOSSLESS)
def test_lossless_formats_round_trip_exactly(tmp_path, fmt, name, kw):
    pixels = noise()
    path = save(tmp_path, name, Image.fromarray(pixels), fmt, **kw)
    img = load_image(path)
    assert img.format == fmt and img.original_mode == "RGB"
    assert img.rgb.dtype == np.uint8 and img.rgb.flags.c_contiguous and img.rgb.flags.writeable
    assert (img.width, img.height, img.n_frames, img.warnings) == (W, H, 1, [])
    np.testing.assert_array_equal(img.rgb, pixels)
    with open(path, "rb") as f:
        assert img.sha256 == hashlib.sha256(f.read()).hexdigest()


def _flat(value=(200, 40, 90)) -> Image.Image:
    return Image.new("RGB", (W, H), value)


@pytest.mark.parametrize("name", ["a.jpg", "a.jpeg", "a.jpe", "a.jfif"])
def test_jpeg(tmp_path, name):
    img = load_image(save(tmp_path, name, _flat(), "JPEG", quality=95))
    assert img.format == "JPEG" and img.rgb.shape == (H, W, 3) and img.warnings == []
    assert np.abs(img.rgb.astype(int) - (200, 40, 90)).max() <= 3


def test_gif_single_frame_is_palette_converted(tmp_path):
    img = load_image(save(tmp_path, "a.gif", _flat()))
    assert (img.format, img.original_mode, img.n_frames, img.animated) == ("GIF", "P", 1, False)
    assert codes(img) == [errors.CONVERTED]
    np.testing.assert_array_equal(img.rgb[0, 0], (200, 40, 90))


def test_animated_gif_scans_first_frame(tmp_path):
    frames = [_flat(c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    img = load_image(save(tmp_path, "a.gif", frames[0], save_all=True, append_images=frames[1:], duration=50))
    assert img.n_frames == 3 and img.animated and errors.ANIMATED in codes(img)
    np.testing.assert_array_equal(img.rgb[H // 2, W // 2], (255, 0, 0))


@pytest.mark.parametrize("name", ["a.mpo", "a.jpg"])
def test_mpo_first_frame_and_jpeg_family(tmp_path, name):
    try:
        path = save(tmp_path, name, _flat(), "MPO", save_all=True, append_images=[_flat((0, 0, 0))])
    except (KeyError, ValueError, OSError):
        pytest.skip("this Pillow cannot write MPO")
    img = load_image(path)
    assert img.format == "MPO" and img.n_frames == 2
    assert codes(img) == [errors.ANIMATED]  # MPO content in .jpg is not mislabelled
    assert np.abs(img.rgb.astype(int) - (200, 40, 90)).max() <= 3


def test_heic(tmp_path):
    pytest.importorskip("pillow_heif")
    assert loading._heif_opener()  # registers the HEIF writer too
    img = load_image(save(tmp_path, "a.heic", _flat(), "HEIF", quality=95))
    assert img.format == "HEIF" and img.rgb.shape == (H, W, 3) and img.warnings == []
    assert np.abs(img.rgb.astype(int) - (200, 40, 90)).max() <= 8


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF support")
def test_avif(tmp_path):
    img = load_image(save(tmp_path, "a.avif", _flat(), "AVIF", quality=95))
    assert img.format == "AVIF" and img.rgb.shape == (H, W, 3)
    assert np.abs(img.rgb.astype(int) - (200, 40, 90)).max() <= 8


def test_bytes_input_uses_name(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(noise()).save(buf, "PNG")
    img = load_image(buf.getvalue(), name="upload.jpg")
    assert img.path == "upload.jpg" and img.format == "PNG" and codes(img) == [errors.MISLABELLED]
    assert load_error(b"", name="x.png").code == errors.EMPTY


# --- orientation and modes ------------------------------------------------------------------


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((H, W, 3), np.uint8)
    pixels[:10, :10] = 255  # white block top-left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    img = load_image(save(tmp_path, "r.jpg", Image.fromarray(pixels), "JPEG", exif=exif, quality=95))
    assert img.rgb.shape == (W, H, 3) and codes(img) == [errors.EXIF_ROTATED]
    assert img.rgb[:10, -10:].mean() > 240 and img.rgb[:10, :10].mean() < 15  # now top-right


def test_cmyk_jpeg(tmp_path):
    img = load_image(save(tmp_path, "c.jpg", Image.new("CMYK", (W, H), (0, 255, 255, 0)), "JPEG"))
    assert img.original_mode == "CMYK" and codes(img) == [errors.CONVERTED]
    assert "CMYK" in img.warnings[0].message
    assert np.abs(img.rgb.astype(int) - (255, 0, 0)).max() <= 10


def _palette(transparent: bool) -> Image.Image:
    im = Image.new("P", (2, 1))
    im.putpalette([10, 20, 30, 200, 100, 50])
    im.putdata([0, 1])
    if transparent:
        im.info["transparency"] = 0
    return im


def test_palette(tmp_path):
    img = load_image(save(tmp_path, "p.png", _palette(False)))
    assert img.original_mode == "P" and codes(img) == [errors.CONVERTED]
    np.testing.assert_array_equal(img.rgb[0], [(10, 20, 30), (200, 100, 50)])


def test_palette_with_transparency_is_composited_over_white(tmp_path):
    img = load_image(save(tmp_path, "p.png", _palette(True), transparency=0))
    assert sorted(codes(img)) == [errors.ALPHA_COMPOSITED, errors.CONVERTED]
    np.testing.assert_array_equal(img.rgb[0], [(255, 255, 255), (200, 100, 50)])


def test_la(tmp_path):
    la = Image.fromarray(np.array([[[0, 0], [0, 255], [0, 128]]], np.uint8), "LA")
    img = load_image(save(tmp_path, "la.png", la))
    assert img.original_mode == "LA" and errors.ALPHA_COMPOSITED in codes(img)
    np.testing.assert_array_equal(img.rgb[0, :, 0], [255, 0, 127])


def test_rgba(tmp_path):
    rgba = np.array([[[255, 0, 0, 0], [0, 0, 255, 255], [0, 0, 0, 128]]], np.uint8)
    img = load_image(save(tmp_path, "a.png", Image.fromarray(rgba, "RGBA")))
    assert sorted(codes(img)) == [errors.ALPHA_COMPOSITED, errors.CONVERTED]
    np.testing.assert_array_equal(img.rgb[0], [(255, 255, 255), (0, 0, 255), (127, 127, 127)])


def test_opaque_rgba_is_not_flagged_composited(tmp_path):
    img = load_image(save(tmp_path, "a.png", Image.new("RGBA", (W, H), (1, 2, 3, 255))))
    assert codes(img) == [errors.CONVERTED]
    np.testing.assert_array_equal(img.rgb[0, 0], (1, 2, 3))


def test_16bit_grey_png_is_divided_by_257(tmp_path):
    values = np.array([[0, 257, 1000, 65278, 65535]], np.uint16)
    img = load_image(save(tmp_path, "g.png", Image.fromarray(values)))
    assert img.original_mode.startswith("I") and codes(img) == [errors.CONVERTED]
    np.testing.assert_array_equal(img.rgb[0, :, 0], [0, 1, 4, 254, 255])
    np.testing.assert_array_equal(img.rgb[..., 0], img.rgb[..., 2])


def test_1bit(tmp_path):
    img = load_image(save(tmp_path, "b.png", Image.fromarray(np.array([[True, False]])).convert("1")))
    assert img.original_mode == "1"
    np.testing.assert_array_equal(img.rgb[0], [(255, 255, 255), (0, 0, 0)])


@pytest.mark.parametrize(
    "values, expected",
    [
        ([0.0, 0.5, 1.0], [0, 128, 255]),
        ([0.0, 100.0, 300.0], [0, 100, 255]),
        ([-1.0, np.nan, 2.0], [0, 0, 2]),
    ],
)
def test_float_tiff(tmp_path, values, expected):
    img = load_image(save(tmp_path, "f.tiff", Image.fromarray(np.array([values], np.float32), "F")))
    assert img.original_mode == "F" and codes(img) == [errors.CONVERTED]
    np.testing.assert_array_equal(img.rgb[0, :, 1], expected)


@pytest.mark.parametrize(
    "values, expected", [([0, 100, 255], [0, 100, 255]), ([0, 514, 65278, 70000], [0, 2, 254, 255])]
)
def test_32bit_integer_tiff(tmp_path, values, expected):
    img = load_image(save(tmp_path, "i.tiff", Image.fromarray(np.array([values], np.int32), "I")))
    assert img.original_mode == "I"
    np.testing.assert_array_equal(img.rgb[0, :, 0], expected)


# --- failures -------------------------------------------------------------------------------


def _bytes(fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(noise(64, 64)).save(buf, fmt, **kw)
    return buf.getvalue()


def _write(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_missing_directory_and_empty(tmp_path):
    assert load_error(str(tmp_path / "nope.jpg")).code == errors.NOT_FOUND
    assert load_error(str(tmp_path / "a.jpg" / "b.jpg")).code == errors.NOT_FOUND
    assert load_error(str(tmp_path)).code == errors.NOT_A_FILE
    err = load_error(_write(tmp_path, "e.jpg", b""))
    assert err.code == errors.EMPTY and err.path.endswith("e.jpg")
    assert err.notice() == Notice(code=errors.EMPTY, message=err.message)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads anything")
def test_permission_denied(tmp_path):
    path = _write(tmp_path, "a.png", _bytes("PNG"))
    os.chmod(path, 0)
    assert load_error(path).code == errors.PERMISSION_DENIED


@pytest.mark.parametrize("fmt, name", [("JPEG", "t.jpg"), ("PNG", "t.png"), ("WEBP", "t.webp")])
def test_truncated(tmp_path, fmt, name):
    data = _bytes(fmt)
    err = load_error(_write(tmp_path, name, data[: len(data) // 2]))
    assert err.code == errors.TRUNCATED, err.message


GARBAGE = np.random.default_rng(1).integers(0, 256, 2000, dtype=np.uint8).tobytes()


@pytest.mark.parametrize(
    "data", [b"\x89PNG\r\n\x1a\n" + GARBAGE, b"II*\x00" + GARBAGE, b"\xff\xd8\xff" + bytes(2000)]
)
def test_garbage_after_magic_is_corrupt(tmp_path, data):
    err = load_error(_write(tmp_path, "c.png", data))
    assert err.code == errors.CORRUPT and "header" in err.message


def test_damaged_pixel_data_is_corrupt(tmp_path):
    data = bytearray(_bytes("PNG"))
    data[200:260] = bytes(60)  # inside the compressed IDAT stream
    assert load_error(_write(tmp_path, "d.png", bytes(data))).code == errors.CORRUPT


def test_not_an_image(tmp_path):
    err = load_error(_write(tmp_path, "notes.jpg", b"hello, this is text\n"))
    assert err.code == errors.NOT_AN_IMAGE and "text" in err.message
    assert load_error(_write(tmp_path, "doc.png", b"%PDF-1.7\n...")).code == errors.NOT_AN_IMAGE
    assert load_error(_write(tmp_path, "x.jpg", bytes(range(256)) * 4)).code == errors.NOT_AN_IMAGE


def test_png_named_jpg_loads_with_mislabelled_warning(tmp_path):
    img = load_image(_write(tmp_path, "really_png.jpg", _bytes("PNG")))
    assert img.format == "PNG" and img.rgb.shape == (64, 64, 3)
    assert codes(img) == [errors.MISLABELLED] and "PNG" in img.warnings[0].message


def test_too_large(tmp_path):
    data = _bytes("PNG")
    path = _write(tmp_path, "big.png", data)
    assert load_error(path, max_bytes=len(data) - 1).code == errors.TOO_LARGE
    assert load_error(data, max_bytes=100).code == errors.TOO_LARGE
    assert load_image(path, max_bytes=len(data)).width == 64


def _huge_1bit_png(side: int) -> bytes:
    """A real side x side 1-bit PNG that is tiny on disk: zlib squeezes the blank rows."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    z = zlib.compressobj(9)
    rows = bytes(1 + side // 8) * 1000  # filter byte + packed bits, 1000 rows at a time
    idat = b"".join(z.compress(rows) for _ in range(side // 1000)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    "side, max_pixels, message",
    [
        (12_000, 10_000_000, "12000x12000"),  # our limit, lowered
        (12_000, loading.DEFAULT_MAX_PIXELS, "12000x12000"),  # 144 M > the 100 M default
        (20_000, loading.DEFAULT_MAX_PIXELS, "pixels"),  # 400 M: Pillow's own limit fires first
    ],
)
def test_decompression_bomb_is_refused_before_decoding(tmp_path, monkeypatch, side, max_pixels, message):
    path = _write(tmp_path, "bomb.png", _huge_1bit_png(side))
    assert os.path.getsize(path) < 100_000

    def no_decoding(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    err = load_error(path, max_pixels=max_pixels)
    assert err.code == errors.DECOMPRESSION_BOMB and message in err.message


def test_heic_without_plugin_is_unsupported(tmp_path, monkeypatch):
    monkeypatch.setattr(loading, "_heif_opener", lambda: False)
    head = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"
    err = load_error(_write(tmp_path, "photo.heic", head + bytes(500)))
    assert err.code == errors.UNSUPPORTED_FORMAT and "pillow-heif" in err.message


def test_only_image_load_errors_escape(tmp_path):
    data = _bytes("PNG")
    for cut in (8, 16, 33, 60, 100, len(data) // 2):  # cut inside every part of the file
        assert load_error(_write(tmp_path, "x.png", data[:cut])).code in errors.REASONS
    # Only the IEND end marker missing: every pixel is there, so the image is scanned.
    assert load_image(_write(tmp_path, "x.png", data[:-12])).width == 64


@pytest.mark.parametrize(
    "head, kind",
    [
        (b"\xff\xd8\xff\xe0", "JPEG"),
        (b"\x89PNG\r\n\x1a\n", "PNG"),
        (b"GIF87a", "GIF"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "WEBP"),
        (b"BM" + bytes(12) + b"\x28\x00\x00\x00", "BMP"),
        (b"BMW is a car", "TEXT"),
        (b"MM\x00*", "TIFF"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIF"),
        (b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avifmiaf", "AVIF"),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x00\x00isomiso2", None),
        (b"%PDF-1.4", "PDF"),
        (b"PK\x03\x04", "ZIP"),
        (b"\x1f\x8b\x08", "GZIP"),
        ("caf\u00e9\n".encode()[:-2], "TEXT"),  # a multi-byte character cut at the end
        (b"\x00\x01\x02", None),
        (b"", None),
    ],
)
def test_sniff_format(head, kind):
    assert sniff_format(head) == kind


# --- sources --------------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path):
    for rel in [
        "a.jpg", "b.PNG", "notes.txt", ".hidden.jpg", ".git/x.jpg",
        "sub/c.webp", "sub/deep/d.gif", "cache/e.jpg",
    ]:  # fmt: skip
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    return tmp_path


def rels(paths, root) -> list[str]:
    return [os.path.relpath(p, root).replace(os.sep, "/") for p in paths]


def test_folder_walk_is_sorted_recursive_and_skips_hidden(tree):
    assert rels(iter_image_paths([str(tree)]), tree) == [
        "a.jpg", "b.PNG", "cache/e.jpg", "sub/c.webp", "sub/deep/d.gif",
    ]  # fmt: skip
    assert rels(iter_image_paths([str(tree)], recursive=False), tree) == ["a.jpg", "b.PNG"]


@pytest.mark.parametrize(
    "include, exclude, expected",
    [
        (["*.jpg"], [], ["a.jpg", "cache/e.jpg"]),
        (["sub/*"], [], ["sub/c.webp", "sub/deep/d.gif"]),
        (["d.gif"], [], ["sub/deep/d.gif"]),  # basename match
        ([], ["cache", "*.gif"], ["a.jpg", "b.PNG", "sub/c.webp"]),
        ([], ["sub/deep"], ["a.jpg", "b.PNG", "cache/e.jpg", "sub/c.webp"]),
        (["*.jpg"], ["cache/*"], ["a.jpg"]),
    ],
)
def test_include_exclude(tree, include, exclude, expected):
    assert rels(iter_image_paths([str(tree)], include=include, exclude=exclude), tree) == expected


def test_files_are_yielded_as_is_missing_included_and_deduplicated(tree):
    notes, missing = str(tree / "notes.txt"), str(tree / "missing.jpg")
    got = list(iter_image_paths([notes, missing, notes, str(tree / "sub"), str(tree / "sub/c.webp")]))
    assert rels(got, tree) == ["notes.txt", "missing.jpg", "sub/c.webp", "sub/deep/d.gif"]


def test_is_lazy(tree):
    paths = iter_image_paths(iter([str(tree), "-"]))
    assert next(paths).endswith("a.jpg")  # stdin (under pytest: not readable) never touched


LISTING = "a.jpg\n\n# a comment\n  sub/c.webp  \r\na.jpg\n"


def test_stdin(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(LISTING))
    assert list(iter_image_paths(["-"])) == ["a.jpg", "sub/c.webp"]


def test_list_file(tmp_path):
    (tmp_path / "list.txt").write_text(LISTING)
    assert list(read_list_file(str(tmp_path / "list.txt"))) == ["a.jpg", "sub/c.webp", "a.jpg"]


def test_manifest_csv_paths_are_relative_to_its_folder(tmp_path):
    (tmp_path / "data").mkdir()
    absolute = str(tmp_path / "elsewhere.png")
    (tmp_path / "data" / "m.csv").write_text(
        f"label,Path\nreal,img/1.jpg\nfake,{absolute}\nreal,\n", encoding="utf-8-sig"
    )
    got = list(iter_image_paths([str(tmp_path / "data" / "m.csv")]))
    assert got == [str(tmp_path / "data" / "img" / "1.jpg"), absolute]


def test_csv_without_path_column_is_just_a_file(tmp_path):
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    assert list(iter_image_paths([str(tmp_path / "t.csv")])) == [str(tmp_path / "t.csv")]

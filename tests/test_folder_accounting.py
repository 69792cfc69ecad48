"""Folder scans account for every file: skipped files are counted and listed, `--sniff` scans
images hidden behind unknown extensions, and an SVG gets an `unsupported-format` record."""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import noise_rgb
from synthscan.cli.main import app
from synthscan.io import ImageLoadError, iter_image_paths, load_image

SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>'


@pytest.fixture
def mixed_folder(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.fromarray(noise_rgb(40, 40)).save(folder / "photo.png")
    Image.fromarray(noise_rgb(40, 40, seed=1)).save(folder / "3f9a2c71", format="JPEG")  # a hash-named download
    Image.fromarray(noise_rgb(40, 40, seed=2)).save(folder / "blob.bin", format="PNG")
    (folder / "logo.svg").write_bytes(SVG)
    (folder / "notes.txt").write_text("not an image\n")
    (folder / ".hidden.png").write_bytes(b"")  # hidden files are left out, not "skipped"
    return folder


def test_the_walk_reports_what_it_passes_over(mixed_folder):
    skipped: list[str] = []
    paths = list(iter_image_paths([str(mixed_folder)], on_skip=skipped.append))
    names = lambda ps: sorted(p.rsplit("/", 1)[1] for p in ps)  # noqa: E731
    assert names(paths) == ["logo.svg", "photo.png"]
    assert names(skipped) == ["3f9a2c71", "blob.bin", "notes.txt"]

    skipped.clear()
    sniffed = list(iter_image_paths([str(mixed_folder)], sniff=True, on_skip=skipped.append))
    assert names(sniffed) == ["3f9a2c71", "blob.bin", "logo.svg", "photo.png"]
    assert names(skipped) == ["notes.txt"]
    # What the user excluded is not "skipped".
    skipped.clear()
    list(iter_image_paths([str(mixed_folder)], exclude=["*.txt"], on_skip=skipped.append))
    assert names(skipped) == ["3f9a2c71", "blob.bin"]


def test_svg_is_an_unsupported_format(mixed_folder):
    with pytest.raises(ImageLoadError) as info:
        load_image(mixed_folder / "logo.svg")
    assert info.value.code == "unsupported-format" and "vector" in info.value.message
    with pytest.raises(ImageLoadError) as info:  # by content, whatever the name
        load_image(SVG, name="drawing.png")
    assert info.value.code == "unsupported-format"


def test_cli_counts_lists_and_sniffs(mixed_folder, tiny_model_path):
    runner = CliRunner()
    plain = runner.invoke(app, ["scan", str(mixed_folder), "--model", str(tiny_model_path), "-f", "json"])
    assert plain.exit_code == 1  # the SVG failed
    records = {r["path"].rsplit("/", 1)[1]: r for r in json.loads(plain.stdout)}
    assert set(records) == {"photo.png", "logo.svg"}
    assert records["logo.svg"]["error"]["code"] == "unsupported-format"
    assert "skipped 3 file(s) without an image extension" in plain.stderr

    listed = runner.invoke(app, ["scan", str(mixed_folder), "--model", str(tiny_model_path), "-f", "csv",
                                 "--sniff", "--skipped"])
    rows = {r["path"].rsplit("/", 1)[1]: r for r in csv.DictReader(io.StringIO(listed.stdout))}
    assert {name: r["status"] for name, r in rows.items()} == {
        "3f9a2c71": "ok", "blob.bin": "ok", "photo.png": "ok", "logo.svg": "error", "notes.txt": "skipped"}
    assert rows["notes.txt"]["error_code"] == "unknown-extension"
    assert listed.exit_code == 1 and "skipped 1 file(s)" in listed.stderr

    only_text = mixed_folder / "only"
    only_text.mkdir()
    shutil.copy(mixed_folder / "notes.txt", only_text)
    empty = runner.invoke(app, ["scan", str(only_text), "--model", str(tiny_model_path)])
    assert empty.exit_code == 2 and "skipped 1 file(s)" in empty.stderr and "no images given" in empty.stderr

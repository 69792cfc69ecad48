"""`synthscan fingerprints` on a tiny folder dataset, and the family-profile chart."""

from __future__ import annotations

import csv
import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from synthscan.cli.main import app
from synthscan.explain import family_profiles


def _noise(seed: int, size: int = 256) -> np.ndarray:
    grey = np.random.default_rng(seed).normal(128, 20, (size, size, 1))
    return np.repeat(grey, 3, axis=2)


def _write(path, rgb) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb.clip(0, 255).astype(np.uint8)).save(path)


def test_fingerprints_command_writes_figures_distances_and_profiles(tmp_path):
    data = tmp_path / "data"
    yy, xx = np.mgrid[0:256, 0:256]
    for i in range(3):
        _write(data / "real" / f"r{i}.png", _noise(i))
        _write(data / "fake" / "checker" / f"c{i}.png", _noise(10 + i) + (10.0 * (-1.0) ** (yy + xx))[..., None])
        _write(data / "fake" / "blocky" / f"b{i}.png", np.repeat(np.repeat(_noise(20 + i, 128), 2, 0), 2, 1))
    out, npz = tmp_path / "out", tmp_path / "spectra" / "family_spectra.npz"
    result = CliRunner().invoke(app, ["fingerprints", str(data), "--out", str(out), "--family-spectra", str(npz)])
    assert result.exit_code == 0, result.output
    assert "checker" in result.output

    for name in ["real_mean_spectrum.png", "generators/checker.png", "generators/blocky.png",
                 "families/unknown.png", "profiles.png", "distances.png"]:
        assert Image.open(out / name).size[0] >= 256, name
    rows = list(csv.DictReader((out / "distances.csv").open()))
    assert len(rows) == 9 and {r["generator"] for r in rows} == {"real", "checker", "blocky"}
    summary = json.loads((out / "summary.json").read_text())
    real = summary["generators"]["real"]["mean_distance"]
    # Up-sampling removes the top frequencies: far from the reals' spectrum. A checkerboard adds
    # one peak only, a smaller but clear distance; its fingerprint is brightest at the corner
    # (0.5, 0.5) cycles/pixel, i.e. the picture's top-left pixels after fftshift.
    assert summary["generators"]["blocky"]["mean_distance"] > 2 * real
    assert summary["generators"]["checker"]["mean_distance"] > 1.3 * real
    fingerprint = np.asarray(Image.open(out / "generators" / "checker.png").convert("L"), dtype=float)
    assert fingerprint[:4, :4].mean() >= fingerprint.max() - 1
    with np.load(npz) as spectra:
        assert set(spectra.files) == {"real", "unknown"}
        assert spectra["real"].dtype == np.float16 and spectra["real"].shape == (64,)


def test_fingerprints_command_rejects_a_dataset_without_reals(tmp_path):
    data = tmp_path / "data"
    (data / "real").mkdir(parents=True)
    _write(data / "fake" / "g" / "a.png", _noise(0))
    result = CliRunner().invoke(app, ["fingerprints", str(data), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "empty class folder" in result.output and "real" in result.output


def test_family_profile_map_draws_the_bundled_family_means():
    assert set(family_profiles.family_profiles()) == {"real", "gan", "diffusion", "other"}
    chart = family_profiles.family_profile_map(np.zeros(64, np.float32))
    assert chart is not None and chart.kind == "spectrum-profile" and chart.png_base64
    assert family_profiles.family_profile_map(np.zeros(10, np.float32)) is None  # another frequency grid

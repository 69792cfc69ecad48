"""`synthscan fit ...` on a tiny manifest: each command writes its data file with its command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from typer.testing import CliRunner

from synthscan.cli.main import app
from synthscan.explain.artifacts import threshold
from synthscan.explain.artifacts.thresholds import Threshold
from synthscan.explain.family import FamilyModel


@pytest.fixture
def manifest(tmp_path):
    """Train and val images: smooth "real" photos, and nearest-up-sampled "gan" / blurred "diffusion" fakes."""
    rng = np.random.default_rng(0)
    rows = ["path,label,generator,family,split,track"]
    for split, n in (("train", 6), ("val", 3)):
        for i in range(n):
            for label, fam in (("real", "real"), ("fake", "gan"), ("fake", "diffusion")):
                if fam == "gan":
                    rgb = np.repeat(np.repeat(rng.normal(128, 25, (32, 32, 3)), 2, 0), 2, 1)
                else:
                    rgb = ndimage.gaussian_filter(rng.normal(128, 60, (64, 64, 3)), (1.5 if fam == "diffusion" else 0.7,) * 2 + (0,))
                    rgb += rng.normal(0, 2, rgb.shape)
                name = f"{split}-{fam}-{i}.png"
                Image.fromarray(rgb.clip(0, 255).astype(np.uint8)).save(tmp_path / name)
                rows.append(f"{name},{label},{fam}-gen,{fam},{split},256")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    return tmp_path / "manifest.csv"


def test_fit_artifact_thresholds_writes_reals_percentiles_and_its_command(manifest, tmp_path):
    out = tmp_path / "thresholds.json"
    r = CliRunner().invoke(app, ["fit", "artifact-thresholds", str(manifest), "--per-label", "6", "--out", str(out)])
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    assert "fit artifact-thresholds" in data["command"]
    reals = data["percentiles"]["real"]
    for artifact_id, t in data["thresholds"].items():
        if artifact_id in reals:  # measured on these reals: onset = p90, full = p99
            assert (t["onset"], t["full"]) == (reals[artifact_id]["p90"], reals[artifact_id]["p99"])
        else:  # nothing to measure on them: the bundled threshold is kept
            assert Threshold(**t) == threshold(artifact_id)
    assert "upsampling-pixel-correlation" in reals and "real (n<=6)" in r.stdout


def test_fit_family_writes_a_model_with_its_command(manifest, tmp_path):
    out = tmp_path / "family.json"
    r = CliRunner().invoke(app, ["fit", "family", str(manifest), "--out", str(out)])
    assert r.exit_code == 0, r.output
    model = FamilyModel.model_validate_json(out.read_text())
    assert model.classes == ["diffusion", "gan"] and "fit family" in model.training["command"]
    assert model.training["val"]["gan"]["n"] == 3

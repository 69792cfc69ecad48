"""ONNX export and onnxruntime scoring agree with the torch path (within 1e-4)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import TINY_CALIBRATION, TINY_DECISION, noise_rgb
from synthscan.cli.main import app
from synthscan.detectors.base import CalibratedModel, InputPolicy, ModelInfo
from synthscan.detectors.registry import load_model
from synthscan.detectors.texture_gbm import TextureGBMConfig, TextureGBMDetector
from synthscan.scanning import Scanner

pytest.importorskip("onnxruntime")
from synthscan.runtime.onnx_export import export_onnx  # noqa: E402
from synthscan.runtime.onnx_model import load_onnx_model  # noqa: E402


@pytest.fixture
def tiny_gbm() -> CalibratedModel:
    """texture-gbm fitted to random labels of noise images (64 px tiles, 20 trees): its trees split on
    small feature differences, so the noise images of `image_folder` get different scores."""
    det = TextureGBMDetector(TextureGBMConfig(
        input=InputPolicy(mode="tiles", crop_size=64, max_tiles=16), features=["residual", "spam", "colour"],
        max_iter=20, max_leaf_nodes=7))
    det.fit_arrays([noise_rgb(128, 128, seed=s) for s in range(24)], [s % 2 for s in range(24)])
    info = ModelInfo(detector="texture-gbm", name="tiny-gbm", calibration=TINY_CALIBRATION.model_copy(),
                     decision=TINY_DECISION.model_copy())
    return CalibratedModel(det, info)


def _scores(model, folder) -> dict[str, tuple]:
    paths = sorted(str(p) for p in folder.iterdir())
    return {r.path: (r.status, r.p_fake, [t.p_fake for t in r.tile_scores], r.verdict)
            for r in Scanner(model, workers=1).scan_paths(paths)}


@pytest.mark.parametrize("which", ["tiny_model", "tiny_gbm", "synthscan-default", "synthscan-npr"])
def test_onnx_scores_match_torch(which, request, tmp_path, image_folder):
    model = load_model(which) if which.startswith("synthscan") else request.getfixturevalue(which)
    json_path = export_onnx(model, tmp_path / "export")
    record = json.loads(json_path.read_text())
    assert record["calibration"] == model.info.calibration.model_dump()
    assert record["decision"] == model.info.decision.model_dump()
    exported = load_onnx_model(json_path.parent)
    # exact INT8 products on CPUs without VNNI (the default's export holds the quantised tower)
    assert exported.session.get_session_options().get_session_config_entry("session.x64quantprecision") == "1"
    torch_scores, onnx_scores = _scores(model, image_folder), _scores(exported, image_folder)
    assert torch_scores.keys() == onnx_scores.keys()
    spread = [s[1] for s in torch_scores.values() if s[0] == "ok"]
    assert max(spread) - min(spread) > 1e-3  # the comparison below is not between constants
    for path, (status, p, tiles, verdict) in torch_scores.items():
        o_status, o_p, o_tiles, o_verdict = onnx_scores[path]
        assert status == o_status
        if status == "ok":
            assert abs(p - o_p) < 1e-4 and np.allclose(tiles, o_tiles, atol=1e-4, rtol=0) and verdict == o_verdict


def test_cli_export_and_scan_with_onnx_runtime(tmp_path, tiny_model_path, image_folder):
    runner = CliRunner()
    result = runner.invoke(app, ["export", str(tiny_model_path), "--format", "onnx", "--out", str(tmp_path / "x")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "x" / "tiny-npr.onnx").exists()
    out = tmp_path / "onnx.jsonl"
    result = runner.invoke(app, ["scan", str(image_folder), "--runtime", "onnx", "--model", str(tmp_path / "x"),
                                 "--out", str(out)])
    assert result.exit_code == 1, result.output  # the folder holds bad files
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    torch_rows = {r.path: r.p_fake for r in Scanner(tiny_model_path).scan_paths(sorted(str(p) for p in image_folder.iterdir()))}
    assert {r["path"] for r in rows} == set(torch_rows)
    for r in rows:
        if r["status"] == "ok":
            assert abs(r["p_fake"] - torch_rows[r["path"]]) < 1e-4


def test_onnx_runtime_needs_an_export(tiny_model_path, image_folder):
    result = CliRunner().invoke(app, ["scan", str(image_folder), "--runtime", "onnx", "--model", str(tiny_model_path)])
    assert result.exit_code == 2 and "synthscan export" in result.output


# Scans an ONNX export in a fresh interpreter in which `import torch` fails, as on a worker
# that has only numpy, Pillow and onnxruntime.
WITHOUT_TORCH = """
import json, sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is not installed here")
sys.meta_path.insert(0, NoTorch())
from synthscan.runtime.onnx_model import load_onnx_model
from synthscan.scanning import Scanner
results = Scanner(load_onnx_model(sys.argv[1]), workers=1).scan_paths(sys.argv[2:])
print(json.dumps({r.path: r.p_fake for r in results}))
"""


def test_onnx_export_scores_without_torch(tmp_path, tiny_model, image_folder):
    import subprocess
    import sys

    export_onnx(tiny_model, tmp_path / "export")
    paths = sorted(str(p) for p in image_folder.iterdir())
    run = subprocess.run([sys.executable, "-c", WITHOUT_TORCH, str(tmp_path / "export"), *paths],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    without_torch = json.loads(run.stdout.strip().splitlines()[-1])
    with_torch = {r.path: r.p_fake for r in Scanner(tiny_model, workers=1).scan_paths(paths)}
    assert without_torch.keys() == with_torch.keys() and any(p is not None for p in with_torch.values())
    for path, p in with_torch.items():
        assert (p is None) == (without_torch[path] is None)
        if p is not None:
            assert abs(p - without_torch[path]) < 1e-4

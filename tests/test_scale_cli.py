"""`scan --engine ray` usage errors, which need no running Ray."""

from __future__ import annotations

import sys

from typer.testing import CliRunner

from synthscan.cli.main import app


def test_engine_ray_without_ray_names_the_extra(monkeypatch, tmp_path, image_folder):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    result = CliRunner().invoke(app, ["scan", "--engine", "ray", str(image_folder), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "pip install 'synthscan[ray]'" in result.output
    assert not (tmp_path / "o").exists()


def test_engine_ray_needs_an_output_folder(image_folder):
    result = CliRunner().invoke(app, ["scan", "--engine", "ray", str(image_folder)])
    assert result.exit_code == 2 and "--out OUT_DIR" in result.output


def test_unknown_engine_is_a_usage_error(image_folder):
    result = CliRunner().invoke(app, ["scan", "--engine", "spark", str(image_folder)])
    assert result.exit_code == 2

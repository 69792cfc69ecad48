"""Perturbations, sweeps and their report, on tiny generated images and the tests' tiny model."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from synthscan.data.samples import Sample
from synthscan.evaluate.perturb import CHAINS, KINDS, Perturbation, parse_spec, rng_for
from synthscan.evaluate.sweep import run_sweep
from synthscan.evaluate.sweep_report import summary_rows, to_html, to_markdown
from synthscan.scanning import Scanner
from conftest import noise_rgb
from test_cli import make_dataset, run


def test_parse_spec_levels_and_errors():
    assert parse_spec("jpeg:95,75") == [Perturbation("jpeg", 95.0), Perturbation("jpeg", 75.0)]
    assert parse_spec("chain:social")[0].label == "chain:social"
    assert parse_spec("resize:0.5")[0].label == "resize:0.5"
    for bad, msg in [("gamma:2", "unknown perturbation"), ("jpeg", "give levels"), ("jpeg:high", "not a"),
                     ("jpeg:0", "out of range"), ("crop:1.5", "out of range"), ("chain:tiktok", "known chains")]:
        with pytest.raises(ValueError, match=msg):
            parse_spec(bad)


@pytest.mark.parametrize("spec", ["jpeg:60", "webp:60", "resize:0.5", "resize:1.5", "blur:2", "crop:0.5",
                                  "noise:5", "chain:social", "chain:screenshot"])
def test_every_perturbation_is_deterministic_and_changes_pixels(spec):
    img = noise_rgb(70, 90, seed=3)
    p = parse_spec(spec)[0]
    a, b = p(img, rng_for(0, "x.png", p)), p(img, rng_for(0, "x.png", p))
    assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3
    np.testing.assert_array_equal(a, b)  # same seed, image and perturbation: same pixels
    assert a.shape != img.shape or not np.array_equal(a, img)


def test_geometry_of_resize_crop_and_chains():
    img = noise_rgb(100, 200, seed=1)
    rng = np.random.default_rng(0)
    assert Perturbation("resize", 0.5)(img, rng).shape == (50, 100, 3)
    assert Perturbation("crop", 0.5)(img, rng).shape == (50, 100, 3)
    big = np.zeros((1200, 1600, 3), np.uint8)
    assert CHAINS["social"](big).shape == (810, 1080, 3)  # long side capped at 1080
    shot = CHAINS["screenshot"](img)
    assert shot.shape == (80 + 48, 160 + 48, 3) and (shot[0, 0] == 236).all()  # 0.8x, 24 px border


def test_seed_and_image_change_random_perturbations():
    img = noise_rgb(64, 64, seed=2)
    p = Perturbation("noise", 5.0)
    base = p(img, rng_for(0, "a.png", p))
    assert not np.array_equal(base, p(img, rng_for(1, "a.png", p)))
    assert not np.array_equal(base, p(img, rng_for(0, "b.png", p)))
    assert set(KINDS) == {"jpeg", "webp", "resize", "blur", "crop", "noise", "chain"}


def _samples(tmp_path):
    data = make_dataset(tmp_path / "ds", n_train=3, n_val=0)
    from synthscan.data.datasets import read_dataset

    return read_dataset(data)


def test_sweep_rows_match_scanning_the_perturbed_images(tmp_path, tiny_model_path):
    samples = _samples(tmp_path)
    scanner = Scanner(tiny_model_path)
    perts = parse_spec("jpeg:75") + parse_spec("noise:3")
    sweep = run_sweep([scanner], samples, perts, seed=4, per_generator=True)
    assert sweep.n_images == 6 and sweep.errors == 0
    assert [(r.perturbation, r.level) for r in sweep.rows] == [("clean", ""), ("jpeg", "75"), ("noise", "3")]
    clean = scanner.scan_paths([s.path for s in samples])
    ys = [s.y for s in samples]
    from synthscan.evaluate.metrics import binary_metrics

    # float noise only: the sweep and the scan batch the images differently (1e-7 seen on an AMD EPYC)
    assert sweep.row("tiny-npr", "clean").metrics == pytest.approx(binary_metrics(ys, [r.p_fake for r in clean], 0.5),
                                                                   abs=1e-5)
    # the jpeg row is exactly the model on JPEG-75 copies
    from synthscan.data.augment import jpeg
    from synthscan.io import load_image

    jp = [scanner.scan_images([dataclasses.replace(im, rgb=jpeg(im.rgb, 75))])[0].p_fake
          for im in (load_image(s.path) for s in samples)]
    assert sweep.row("tiny-npr", "jpeg", "75").metrics == pytest.approx(binary_metrics(ys, jp, 0.5), abs=1e-5)
    assert set(sweep.rows[0].per_generator) == {"genA", "real"}
    again = run_sweep([scanner], samples, perts, seed=4)
    assert [r.metrics for r in again.rows] == [r.metrics for r in sweep.rows]


def test_sweep_skips_unreadable_files_and_reports(tmp_path, tiny_model_path):
    samples = _samples(tmp_path)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"")
    samples.append(Sample(str(bad), "fake", "genA", "unknown"))
    sweep = run_sweep([Scanner(tiny_model_path), Scanner(tiny_model_path)], samples, parse_spec("blur:1"),
                      per_generator=True)
    assert sweep.errors == 1 and sweep.n_images == 6 and len(sweep.rows) == 4
    rows = summary_rows(sweep)
    assert rows[0][-1] == "+0.0"  # clean vs itself
    md = to_markdown(sweep)
    assert "| model | perturbation | level | AP |" in md and "fake accuracy per generator" in md
    assert "<table>" in to_html(sweep)


def test_eval_perturb_cli_writes_report_and_plots(tmp_path, tiny_model_path):
    pytest.importorskip("matplotlib")
    data = make_dataset(tmp_path / "ds", n_train=2, n_val=0)
    out, js = tmp_path / "sweep.md", tmp_path / "sweep.json"
    r = run("eval", data, "-m", tiny_model_path, "--compare", tiny_model_path, "--perturb", "jpeg:90,70",
            "--perturb", "chain:social", "--per-generator", "--report", out, "--json", js)
    assert r.exit_code == 0, r.output
    assert "jpeg" in r.stdout and "social" in r.stdout
    assert (tmp_path / "sweep_plots" / "sweep_jpeg.png").stat().st_size > 1000
    assert "sweep_plots/sweep_chain.png" in out.read_text()
    assert len(json.loads(js.read_text())["rows"]) == 2 * 4
    html = tmp_path / "sweep.html"
    assert run("eval", data, "-m", tiny_model_path, "--perturb", "blur:1", "--report", html).exit_code == 0
    assert "data:image/png;base64," in html.read_text()
    assert run("eval", data, "-m", tiny_model_path, "--perturb", "gamma:1").exit_code == 2


@pytest.mark.parametrize("on", [{"webp_p": 1.0}, {"downscale_p": 1.0, "downscale_factor": (0.6, 0.6)}])
def test_web_processing_augmentations(on):
    from synthscan.data.augment import AugmentConfig, augment

    img = noise_rgb(80, 96, seed=1)
    off = {"resized_crop_p": 0.0, "flip_p": 0.0, "blur_p": 0.0, "jpeg_p": 0.0}
    cfg = AugmentConfig(crop_size=32, **off, **on)
    a = augment(img, cfg, np.random.default_rng(3))
    assert a.shape == (32, 32, 3) and np.array_equal(a, augment(img, cfg, np.random.default_rng(3)))
    assert not np.array_equal(a, augment(img, AugmentConfig(crop_size=32, **off), np.random.default_rng(3)))
    assert AugmentConfig().webp_p == 0.0 and AugmentConfig().downscale_p == 0.0  # off unless asked


def test_web_processing_settings_are_checked():
    from pydantic import ValidationError

    from synthscan.data.augment import AugmentConfig

    for bad in ({"webp_quality": (0, 90)}, {"downscale_factor": (0.5, 1.5)}, {"downscale_factor": (0.0, 0.5)}):
        with pytest.raises((ValidationError, ValueError)):
            AugmentConfig(**bad)

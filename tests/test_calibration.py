"""Calibration methods, the saved model format, the FPR-targeted threshold, and their commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_cli import make_dataset, run

from synthscan.detectors.base import Calibration, CalibratedModel
from synthscan.evaluate.calibration import (
    false_positive_rate,
    fit_calibration,
    fit_temperature,
    reliability_bins,
    threshold_for_fpr,
)
from synthscan.evaluate.metrics import expected_calibration_error, fit_platt
from synthscan.scanning import Scanner


def _overconfident(n=400, seed=0):
    """Logits 4x too large for the labels they were drawn from: needs temperature ~4."""
    rng = np.random.default_rng(seed)
    true = rng.normal(0, 2, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-true))).astype(int)
    return 4 * true, y


def test_temperature_recovers_the_true_scale():
    x, y = _overconfident(4000)
    assert fit_temperature(x, y) == pytest.approx(0.25, rel=0.1)
    cal = fit_calibration("temperature", x, y, "t")
    assert cal.method == "temperature" and cal.bias == 0.0


@pytest.mark.parametrize("method", ["platt", "temperature", "isotonic"])
def test_every_method_lowers_the_ece_of_overconfident_scores(method):
    x, y = _overconfident()
    raw = 1 / (1 + np.exp(-x))
    cal = fit_calibration(method, x, y, "fit")
    p = cal.apply(x)
    assert expected_calibration_error(y, p) < expected_calibration_error(y, raw) / 2
    assert np.all(np.diff(p[np.argsort(x)]) >= -1e-12)  # monotone: the ranking is kept


def test_platt_method_is_fit_platt():
    x, y = _overconfident()
    cal = fit_calibration("platt", x, y, "fit")
    assert (cal.scale, cal.bias) == fit_platt(x, y)
    with pytest.raises(ValueError, match="both"):
        fit_calibration("isotonic", x, np.zeros_like(y), "fit")


def test_threshold_for_fpr_meets_the_target_with_ties():
    y = np.array([0] * 10 + [1] * 3)
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.8, 0.9, 0.85, 0.95, 0.99])
    t = threshold_for_fpr(y, p, 0.1)  # one real in ten may be called fake: 0.9
    assert 0.8 < t <= 0.9 and false_positive_rate(y, p, t) == pytest.approx(0.1)
    t = threshold_for_fpr(y, p, 0.15)  # still only one: the two 0.8s go together
    assert false_positive_rate(y, p, t) == pytest.approx(0.1)
    assert false_positive_rate(y, p, threshold_for_fpr(y, p, 0.0)) == 0.0
    bins = reliability_bins(y, p, 10)
    assert sum(b["n"] for b in bins) == 13


def test_old_model_json_loads_as_platt_with_identical_scores(tmp_path, tiny_model, image_folder):
    path = tiny_model.save(tmp_path / "m" / "tiny")
    info = json.loads(path.read_text())
    for key in ("method", "knots_logit", "knots_p"):  # a model file written before these fields existed
        info["calibration"].pop(key)
    old = tmp_path / "m" / "old.json"
    old.write_text(json.dumps(info))
    old.with_suffix(".safetensors").write_bytes(path.with_suffix(".safetensors").read_bytes())
    loaded = CalibratedModel.load(old)
    assert loaded.info.calibration.method == "platt"
    files = sorted(str(p) for p in image_folder.glob("*.png"))
    a = [r.p_fake for r in Scanner(loaded).scan_paths(files)]
    b = [r.p_fake for r in Scanner(tiny_model).scan_paths(files)]
    assert a == b
    # the value is still sigmoid(scale * mean raw tile logit + bias), the pre-existing rule
    c, score = loaded.info.calibration, loaded.score(np.full((64, 64, 3), 90, np.uint8))
    assert score.p_fake == pytest.approx(float(1 / (1 + np.exp(-(c.scale * score.raw_logit + c.bias)))), rel=1e-9)


def test_isotonic_model_round_trips_and_scores_the_mean_raw_logit(tmp_path, tiny_model):
    tiny_model.info.calibration = Calibration(method="isotonic", knots_logit=[-1.0, 0.0, 1.0],
                                              knots_p=[0.1, 0.2, 0.9], fitted_on="t")
    loaded = CalibratedModel.load(tiny_model.save(tmp_path / "iso"))
    assert loaded.info.calibration == tiny_model.info.calibration
    assert loaded.info.calibration.apply(0.5) == pytest.approx(0.55)  # interpolated
    assert loaded.info.calibration.apply([5.0, -1.0]).tolist() == pytest.approx([0.9, 0.1])  # clipped at the end
    score = loaded.score(np.full((64, 64, 3), 90, np.uint8))  # an image's P(fake) maps its mean raw logit
    assert score.p_fake == pytest.approx(float(np.interp(score.raw_logit, [-1.0, 0.0, 1.0], [0.1, 0.2, 0.9])))


def test_calibrate_command_refits_and_measures_held_out(tmp_path, tiny_model_path):
    pytest.importorskip("matplotlib")
    data = make_dataset(tmp_path / "ds", n_train=8, n_val=0)
    out, png = tmp_path / "recal" / "tiny-iso", tmp_path / "rel.png"
    r = run("calibrate", data, "-m", tiny_model_path, "--method", "isotonic", "--target-fpr", "0.25",
            "--split", "", "--out", out, "--reliability", png)
    assert r.exit_code == 0, r.output
    assert "ECE" in r.stdout and "held out" in r.stdout and png.stat().st_size > 1000
    saved = CalibratedModel.load(out.with_suffix(".json"))
    assert saved.info.calibration.method == "isotonic" and saved.info.calibration.knots_p
    assert run("calibrate", data, "-m", tiny_model_path, "--method", "beta", "--out", out).exit_code == 2


def test_eval_reliability_diagram_and_ece_in_markdown(tmp_path, tiny_model_path):
    pytest.importorskip("matplotlib")
    data = make_dataset(tmp_path / "ds", n_train=2, n_val=0)
    md, png = tmp_path / "r.md", tmp_path / "plots" / "rel.png"
    assert run("eval", data, "-m", tiny_model_path, "--markdown", md, "--reliability", png).exit_code == 0
    text = md.read_text()
    assert "Calibration: ECE" in text and "](plots/rel.png)" in text and png.exists()


def test_training_calibration_options_reach_the_saved_decision(tmp_path, tiny_model):
    from synthscan.data.datasets import read_dataset
    from synthscan.train.calibrate import image_logits
    from synthscan.train.recipe import calibrate

    val = read_dataset(make_dataset(tmp_path / "ds", n_train=10, n_val=0))
    summary = calibrate(tiny_model, val, method="temperature", target_fpr=0.2)
    assert summary["method"] == "temperature" and summary["target_fpr"] == 0.2
    y = np.array([s.y for s in val])
    p = tiny_model.info.calibration.apply(image_logits(tiny_model, val))
    assert false_positive_rate(y, p, tiny_model.info.decision.threshold) <= 0.2
    r = run("train", "-d", "npr", "--data", tmp_path, "--out", tmp_path / "o", "--calibration", "beta")
    assert r.exit_code == 2

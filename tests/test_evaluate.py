"""Evaluation metrics and reports, on small arrays whose values are worked out by hand."""

import io
import math

import numpy as np
import pytest
from rich.console import Console

from synthscan.evaluate.metrics import (
    apply_platt,
    binary_metrics,
    brier,
    choose_threshold,
    choose_uncertain_band,
    expected_calibration_error,
    fit_platt,
    per_family_metrics,
    per_group_metrics,
)
from synthscan.evaluate.report import EvalReport, build_report, print_rich_table, to_json, to_markdown

# 4 reals, 3 fakes. At 0.5: reals 3/4 right (0.7 wrong), fakes 2/3 right (0.4 wrong).
Y = [0, 0, 0, 0, 1, 1, 1]
P = [0.1, 0.2, 0.3, 0.7, 0.8, 0.9, 0.4]


def no_nan(d):
    return all(not (isinstance(v, float) and math.isnan(v)) for v in d.values())


def test_perfect_separation():
    m = binary_metrics([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 0.5)
    assert m["ap"] == 1.0 and m["roc_auc"] == 1.0
    assert m["accuracy"] == m["balanced_accuracy"] == m["oracle_accuracy"] == 1.0
    assert (m["n"], m["n_real"], m["n_fake"]) == (4, 2, 2)


def test_known_confusion():
    m = binary_metrics(Y, P, 0.5)
    assert m["accuracy"] == pytest.approx(5 / 7)
    assert m["real_accuracy"] == pytest.approx(3 / 4)
    assert m["fake_accuracy"] == pytest.approx(2 / 3)
    assert m["balanced_accuracy"] == pytest.approx((3 / 4 + 2 / 3) / 2)
    assert m["roc_auc"] == pytest.approx(11 / 12)  # fake>real pairs: 4 + 4 + 3 of 12
    assert m["ap"] == pytest.approx((1 + 1 + 3 / 4) / 3)  # ranks: F F R F R R R


def test_oracle_beats_bad_threshold():
    bad = binary_metrics(Y, P, 0.95)  # everything called real
    assert bad["balanced_accuracy"] == 0.5 and bad["fake_accuracy"] == 0.0
    # best cut is between 0.3 and 0.4: all fakes right, one real wrong
    assert bad["oracle_threshold"] == pytest.approx(0.35)
    assert bad["oracle_balanced_accuracy"] == pytest.approx(0.875)
    assert bad["oracle_accuracy"] == pytest.approx(6 / 7)
    assert (bad["oracle_real_accuracy"], bad["oracle_fake_accuracy"]) == (0.75, 1.0)
    assert choose_threshold(Y, P) == pytest.approx(0.35)


def test_choose_threshold_targets_and_one_class():
    # accuracy: cut in (0.8, 0.9] gets 6/7; balanced accuracy: p >= 0.35 gets (3/5 + 1) / 2 = 0.8
    y, p = [0, 0, 0, 0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4, 0.8, 0.9, 0.35]
    assert choose_threshold(y, p, target="accuracy") == pytest.approx(0.85)
    assert choose_threshold(y, p) == pytest.approx(0.325)
    t = choose_threshold([0, 0], [0.2, 0.4])
    assert t > 0.4 and binary_metrics([0, 0], [0.2, 0.4], t)["accuracy"] == 1.0
    assert choose_threshold([1, 1], [0.2, 0.4]) == 0.2
    with pytest.raises(ValueError):
        choose_threshold(Y, P, target="f1")


def test_one_class_and_empty_give_none():
    reals = binary_metrics([0, 0, 0], [0.1, 0.6, 0.2], 0.5)
    assert reals["ap"] is None and reals["roc_auc"] is None
    assert reals["fake_accuracy"] is None and reals["balanced_accuracy"] is None
    assert reals["real_accuracy"] == pytest.approx(2 / 3)
    assert reals["oracle_accuracy"] == 1.0 and reals["oracle_balanced_accuracy"] is None
    fakes = binary_metrics([1, 1], [0.9, 0.2], 0.5)
    assert fakes["real_accuracy"] is None and fakes["ap"] is None and fakes["fake_accuracy"] == 0.5
    empty = binary_metrics([], [], 0.5)
    assert empty["n"] == 0 and empty["accuracy"] is None and empty["oracle_threshold"] is None
    for m in (reals, fakes, empty):
        assert no_nan(m)


def test_per_generator_pairs_fakes_with_all_reals():
    y = [0, 0, 0, 1, 1, 1, 1]
    p = [0.1, 0.2, 0.6, 0.9, 0.8, 0.5, 0.7]
    g = ["coco", "coco", "coco", "A", "A", "B", "B"]
    out = per_group_metrics(y, p, g, 0.5)
    assert set(out) == {"overall", "coco", "A", "B"}
    a, b, coco = out["A"], out["B"], out["coco"]
    assert a["ap"] == 1.0 and a["roc_auc"] == 1.0
    assert b["roc_auc"] == pytest.approx(5 / 6)  # 0.5 beats 2 reals, 0.7 beats 3
    assert b["ap"] == pytest.approx((1 + 2 / 3) / 2)  # ranks: F R F R R
    assert (b["n"], b["n_fake"], b["n_real"]) == (2, 2, 3)
    assert b["accuracy"] == 1.0 and b["real_accuracy"] == pytest.approx(2 / 3)
    assert b["balanced_accuracy"] == pytest.approx((1 + 2 / 3) / 2)
    assert coco["real_accuracy"] == pytest.approx(2 / 3) and coco["accuracy"] == pytest.approx(2 / 3)
    assert coco["ap"] is None and coco["balanced_accuracy"] is None and coco["oracle_threshold"] is None
    assert out["overall"]["n"] == 7 and all(no_nan(m) for m in out.values())
    alone = per_group_metrics(y, p, g, 0.5, reals_pool=False)["B"]
    assert alone["ap"] is None and alone["n_real"] == 0
    fam = per_family_metrics(y, p, ["real"] * 3 + ["gan"] * 4, 0.5)
    assert fam["gan"]["roc_auc"] == pytest.approx(11 / 12) and fam["real"]["n"] == 3


def test_platt_recovers_scale_and_reduces_nll():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 2, 20000)
    y = (rng.random(x.size) < 1 / (1 + np.exp(-(0.5 * x - 0.3)))).astype(int)  # logits 2x too sharp
    scale, bias = fit_platt(x, y)
    assert scale == pytest.approx(0.5, abs=0.05) and bias == pytest.approx(-0.3, abs=0.08)

    def nll(p):
        return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))

    raw, cal = apply_platt(x, 1, 0), apply_platt(x, scale, bias)
    assert nll(cal) < nll(raw) - 0.02
    assert expected_calibration_error(y, cal) < expected_calibration_error(y, raw)
    assert brier(y, cal) < brier(y, raw)
    s, _ = fit_platt([-2, -1, 1, 2], [0, 0, 1, 1])  # separable: large but finite
    assert math.isfinite(s) and s > 1


def test_ece_and_brier_by_hand():
    assert expected_calibration_error([0, 1], [0.0, 1.0]) == 0.0
    # one bin (0.6-0.67) holding both: |0.5 - 0.6| = 0.1
    assert expected_calibration_error([0, 1], [0.6, 0.6]) == pytest.approx(0.1)
    assert brier([0, 1], [0.2, 0.6]) == pytest.approx((0.04 + 0.16) / 2)
    assert brier([0, 0], [0.1, 0.3]) == pytest.approx(0.05)


def test_uncertain_band_rule():
    # at 0.5 two mistakes: the fake at 0.4 and the real at 0.55
    y = [0, 0, 0, 0, 0, 1, 1, 1, 1]
    p = [0.1, 0.2, 0.3, 0.45, 0.55, 0.4, 0.6, 0.7, 0.9]
    assert choose_uncertain_band(y, p, 0.5, max_error=0.0) == (0.4, 0.55)
    assert choose_uncertain_band(y, p, 0.5, max_error=0.25) == (0.5, 0.5)  # 2/9 already fine
    assert choose_uncertain_band(y, p, 0.5, max_error=0.15) == (0.5, 0.55)  # 1/8 beats wider 1/7
    assert choose_uncertain_band([1, 0], [0.2, 0.8], 0.5, max_error=0.0) == (0.2, 0.8)  # unattainable

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    p = np.clip(0.5 + (y - 0.5) * 0.4 + rng.normal(0, 0.2, 500), 0, 1)
    lo, hi = choose_uncertain_band(y, p, 0.5, max_error=0.05)
    assert lo <= 0.5 <= hi
    outside = (p < lo) | (p > hi)
    assert outside.any() and np.mean((p[outside] >= 0.5) != y[outside]) <= 0.05


RECORDS = [
    {"label": "real", "generator": "coco", "family": "real", "p_fake": 0.1},
    {"label": "real", "generator": "coco", "family": "real", "p_fake": 0.2},
    {"label": "real", "generator": "coco", "family": "real", "p_fake": 0.6},
    {"label": "fake", "generator": "stylegan2", "family": "gan", "p_fake": 0.9},
    {"label": "fake", "generator": "stylegan2", "family": "gan", "p_fake": 0.8},
    {"label": "fake", "generator": "sd14", "family": "diffusion", "p_fake": 0.5},
    {"label": "fake", "generator": "sd14", "family": "diffusion", "p_fake": 0.7},
    {"label": "fake", "generator": "sd14", "family": "diffusion", "p_fake": None},  # failed to load
]


def make_report():
    return build_report(RECORDS, 0.5, model="npr", model_version="1.0", dataset="toy", split="val")


def test_build_report():
    r = make_report()
    assert r.errors == 1 and r.overall["n"] == 7
    assert r.per_generator["sd14"]["family"] == "diffusion" and r.per_generator["sd14"]["label"] == "fake"
    assert r.per_generator["coco"]["label"] == "real"
    assert r.per_generator["sd14"]["roc_auc"] == pytest.approx(5 / 6)
    assert set(r.per_family) == {"real", "gan", "diffusion"}
    assert r.overall["brier"] is not None and r.overall["ece"] is not None
    back = EvalReport.model_validate_json(to_json(r))
    assert back.per_generator["sd14"]["n"] == 2 and back.created == r.created
    with pytest.raises(ValueError):
        build_report([{"label": "maybe", "p_fake": 0.3}], 0.5, model="m", model_version="1", dataset="d", split="s")


def test_markdown_and_rich():
    md = to_markdown(make_report())
    assert "`npr` 1.0" in md and "`toy` (val)" in md and "threshold 0.500" in md
    assert "all real images" in md
    assert "| sd14 | diffusion | 2 | 1.000 | 0.667 | 1.000 | 0.833 | 0.833 | 0.833 |" in md
    assert "| coco | real | 3 | 0.667 | 0.667 | — | — | — | — | — | — |" in md
    # sorted by family then name: diffusion < gan < real
    assert md.index("| sd14 |") < md.index("| stylegan2 |") < md.index("| coco |")
    assert md.index("## Per family") < md.index("## Overall") and "| overall | 7 |" in md
    console = Console(file=io.StringIO(), width=200, record=True)
    print_rich_table(make_report(), console)
    text = console.export_text()
    assert "stylegan2" in text and "Per family" in text and "—" in text

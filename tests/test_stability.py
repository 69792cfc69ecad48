"""`scan --stability`: variants re-scored, spread carried, flipping verdicts made uncertain."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_cli import good, run  # noqa: F401 - good is a fixture

from synthscan.result import Decision
from synthscan.scanning import Scanner, scan
from synthscan.stability import DEFAULT_VARIANTS, VARIANTS, StabilityCheck


def test_stability_records_each_variant_and_the_spread(image_folder, tiny_model_path):
    files = sorted(str(p) for p in image_folder.glob("*.png"))
    plain = list(Scanner(tiny_model_path).scan_paths(files))
    checked = list(Scanner(tiny_model_path, stability=True, stability_margin=float("inf")).scan_paths(files))
    assert sum(r.ok for r in checked) == 3  # and empty.png, an error result, is left alone
    for a, b in zip(plain, checked):
        if not a.ok:
            assert b.stability is None and not b.ok
            continue
        assert a.p_fake == b.p_fake  # the image's own score is unchanged
        s = b.stability
        if a.verdict == "uncertain":  # nothing to check: left as it is
            assert not s.rescored and s.not_rescored_because == "already uncertain" and s.p_fake == {}
            assert b.verdict == "uncertain" and s.spread == 0
            continue
        assert s.rescored and list(s.p_fake) == list(DEFAULT_VARIANTS) and s.original_verdict == a.verdict
        everything = [a.p_fake, *s.p_fake.values()]
        assert s.spread == pytest.approx(max(everything) - min(everything))
        changed = [v for v, verdict in s.verdicts.items() if verdict != a.verdict]
        assert s.stable == (not changed)
        if changed and a.verdict != "uncertain":
            assert b.verdict == "uncertain" and any(w.code == "unstable-verdict" for w in b.warnings)
        else:
            assert b.verdict == a.verdict and b.warnings == a.warnings
    assert all(r.stability is None for r in plain)


def test_a_verdict_a_variant_changes_becomes_uncertain(image_folder, tiny_model):
    # put the threshold inside the spread of one image's variants: some variant must change it
    path = str(image_folder / "big.png")
    probe = scan([path], tiny_model, stability=True)[0]
    lo, hi = probe.stability.min, probe.stability.max
    assert hi > lo
    cut = (probe.p_fake + (hi if probe.p_fake < (lo + hi) / 2 else lo)) / 2
    tiny_model.info.decision = Decision(threshold=cut, uncertain_low=cut, uncertain_high=cut)
    r = Scanner(tiny_model, stability=True).scan_images([__import__("synthscan").io.load_image(path)])[0]
    assert r.verdict == "uncertain" and not r.stability.stable
    warning = next(w for w in r.warnings if w.code == "unstable-verdict")
    assert r.stability.original_verdict in warning.message and "reported as uncertain" in warning.message


def test_variant_choice_and_errors(image_folder, tiny_model_path):
    r = scan([str(image_folder / "square.png")], tiny_model_path, stability=["jpeg90"])[0]
    assert list(r.stability.p_fake) == ["jpeg90"]
    with pytest.raises(ValueError, match="unknown stability variant"):
        StabilityCheck(Scanner(tiny_model_path), ["blur"])
    small = np.zeros((10, 10, 3), np.uint8)
    assert VARIANTS["shift5"](small).shape == small.shape  # too small to shift


def test_scan_cli_stability(good, tiny_model_path):
    r = run("scan", *good, "-m", tiny_model_path, "--stability", "--format", "jsonl")
    assert r.exit_code == 0, r.output
    records = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert len(records) == len(good) and all("spread" in rec["stability"] for rec in records)


def test_scan_cli_stability_variants(good, tiny_model_path):
    r = run("scan", *good, "-m", tiny_model_path, "--stability", "--stability-variants", "jpeg90, webp80",
            "--format", "jsonl")
    assert r.exit_code == 0, r.output
    records = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert all(list(rec["stability"]["p_fake"]) == ["jpeg90", "webp80"] for rec in records)
    unknown = run("scan", *good, "-m", tiny_model_path, "--stability", "--stability-variants", "blur")
    assert unknown.exit_code == 2 and "unknown stability variant" in unknown.output
    alone = run("scan", *good, "-m", tiny_model_path, "--stability-variants", "jpeg90")
    assert alone.exit_code == 2 and "need --stability" in alone.output


def test_margin_skips_images_far_outside_the_band(image_folder, tiny_model):
    """Only images within `margin` logits of the uncertain band are re-scored; the others say why."""
    tiny_model.info.decision = Decision(threshold=0.5, uncertain_low=0.5, uncertain_high=0.5)
    images = [__import__("synthscan").io.load_image(str(p)) for p in sorted(image_folder.glob("*.png"))
              if p.stat().st_size]
    plain = Scanner(tiny_model).scan_images(images)
    distance = [abs(np.log(r.p_fake / (1 - r.p_fake))) for r in plain]
    margin = float(np.median(distance))
    checked = Scanner(tiny_model, stability=True, stability_margin=margin).scan_images(images)
    for r, d in zip(checked, distance):
        assert r.stability.rescored == (d <= margin)
        if d > margin:
            assert r.stability.p_fake == {} and f"within {margin:g}" in r.stability.not_rescored_because
            assert r.stability.stable and r.stability.min == r.stability.max == r.p_fake
        else:
            assert list(r.stability.p_fake) == list(DEFAULT_VARIANTS)
    assert len({r.stability.rescored for r in checked}) == 2  # the median splits them
    everything = Scanner(tiny_model, stability=True, stability_margin=float("inf")).scan_images(images)
    assert all(r.stability.rescored for r in everything)
    with pytest.raises(ValueError, match="margin"):
        Scanner(tiny_model, stability=True, stability_margin=-1)


def test_scan_cli_stability_margin(good, tiny_model_path):
    r = run("scan", *good, "-m", tiny_model_path, "--stability", "--stability-margin", "0", "--format", "jsonl")
    assert r.exit_code == 0, r.output
    records = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    # margin 0: no image is re-scored (none sits exactly on an edge of the band), each says why
    assert records and all(not rec["stability"]["rescored"] and rec["stability"]["not_rescored_because"]
                           for rec in records)
    alone = run("scan", *good, "-m", tiny_model_path, "--stability-margin", "2")
    assert alone.exit_code == 2 and "need --stability" in alone.output

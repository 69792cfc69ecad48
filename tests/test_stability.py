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
    checked = list(Scanner(tiny_model_path, stability=True).scan_paths(files))
    assert sum(r.ok for r in checked) == 3  # and empty.png, an error result, is left alone
    for a, b in zip(plain, checked):
        if not a.ok:
            assert b.stability is None and not b.ok
            continue
        assert a.p_fake == b.p_fake  # the image's own score is unchanged
        s = b.stability
        assert list(s.p_fake) == list(DEFAULT_VARIANTS) and s.original_verdict == a.verdict
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
    assert alone.exit_code == 2 and "needs --stability" in alone.output

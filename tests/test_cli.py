"""The `synthscan` command line: scan (formats, --out, exit codes, --resume, stdin), models,
eval and train, through typer's CliRunner, plus a real `python -m synthscan` subprocess."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from synthscan.cli.main import app
from synthscan.detectors.base import CalibratedModel

# Wide, so that rich tables do not truncate long tmp paths.
ENV = {"COLUMNS": "400", "NO_COLOR": "1"}


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(app, [str(a) for a in args], input=input, env=ENV, catch_exceptions=False)


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def good(image_folder, image_specs) -> list[str]:
    return [str(image_folder / n) for n in image_specs["good"]]


# --- scan: formats and exit codes ---------------------------------------------------------


def test_scan_json_to_stdout_all_good_exits_0(good, tiny_model_path):
    r = run("scan", *good, "-m", tiny_model_path, "-f", "json")
    assert r.exit_code == 0, r.output
    records = json.loads(r.stdout)
    assert [rec["path"] for rec in records] == good
    assert all(rec["status"] == "ok" and 0 <= rec["p_fake"] <= 1 for rec in records)
    assert {rec["model"] for rec in records} == {"tiny-npr"}
    assert {rec["verdict"] for rec in records} <= {"real", "uncertain", "ai-generated"}


def test_scan_folder_jsonl_with_failures_exits_1(image_folder, image_specs, tiny_model_path):
    r = run("scan", image_folder, "-m", tiny_model_path, "-f", "jsonl")
    assert r.exit_code == 1, r.output
    records = jsonl(r.stdout)
    names = sorted({**image_specs["good"], **image_specs["bad"]})
    assert [rec["path"] for rec in records] == [str(image_folder / n) for n in names]
    errors = {Path(rec["path"]).name: rec["error"]["code"] for rec in records if rec["status"] == "error"}
    assert errors == image_specs["bad"]
    assert "3 of 7 file(s) could not be scanned" in r.stderr


def test_scan_csv_to_stdout(image_folder, tiny_model_path):
    r = run("scan", image_folder, "-m", tiny_model_path, "-f", "csv")
    assert r.exit_code == 1
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 7
    by_name = {Path(row["path"]).name: row for row in rows}
    assert by_name["empty.png"]["error_code"] == "empty" and by_name["empty.png"]["status"] == "error"
    assert by_name["big.png"]["tiles"] == "12" and 0 <= float(by_name["big.png"]["p_fake"]) <= 1
    assert by_name["small.png"]["padded"] == "True" and by_name["small.png"]["warnings"] == "padded"


def test_scan_table(image_folder, tiny_model_path):
    r = run("scan", image_folder, "-m", tiny_model_path)  # table is the default
    assert r.exit_code == 1
    out = r.stdout
    assert str(image_folder / "big.png") in out
    assert "not-an-image" in out and "truncated" in out and "empty" in out
    assert "150" in out and "200x150" in out
    assert "model tiny-npr 0.0.1; threshold 0.5" in out


def test_scan_threshold_option(good, tiny_model_path):
    r = run("scan", good[0], "-m", tiny_model_path, "-f", "json", "--threshold", "0.9")
    assert r.exit_code == 0
    (rec,) = json.loads(r.stdout)
    assert rec["threshold"] == 0.9


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_scan_out_file(image_folder, tiny_model_path, tmp_path, fmt):
    out = tmp_path / "res" / f"results.{fmt}"
    r = run("scan", image_folder, "-m", tiny_model_path, "--out", out)  # format from the suffix
    assert r.exit_code == 1, r.output
    assert r.stdout == ""  # results go to the file only
    assert f"wrote {out}" in r.stderr.replace("\n", "")
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no .partial.jsonl, no temp file
    text = out.read_text()
    if fmt == "json":
        records = json.loads(text)
    elif fmt == "jsonl":
        records = jsonl(text)
    else:
        records = list(csv.DictReader(io.StringIO(text)))
    assert len(records) == 7
    assert sum(rec["status"] == "error" for rec in records) == 3


def test_scan_out_file_with_explicit_format(good, tiny_model_path, tmp_path):
    out = tmp_path / "results.txt"
    r = run("scan", *good, "-m", tiny_model_path, "-o", out, "-f", "json")
    assert r.exit_code == 0
    assert [rec["path"] for rec in json.loads(out.read_text())] == good


@pytest.mark.parametrize(
    "args, message",
    [
        (["-f", "xml"], "--format"),
        (["-f", "table", "-o", "x.json"], "--out"),
        (["--threshold", "1.5"], "--threshold"),
        (["--resume"], "--resume"),
    ],
)
def test_scan_usage_errors_exit_2(good, tiny_model_path, args, message):
    r = CliRunner().invoke(app, ["scan", good[0], "-m", str(tiny_model_path), *args], env=ENV)
    assert r.exit_code == 2, r.output
    assert message in r.output


def test_scan_unknown_model_exits_2(good, tmp_path):
    r = run("scan", good[0], "-m", tmp_path / "nope.json")
    assert r.exit_code == 2
    assert "no model" in r.stderr


def test_scan_no_inputs_exits_2(tmp_path, tiny_model_path):
    r = run("scan", "-m", tiny_model_path)
    assert r.exit_code == 2 and "no images given" in r.stderr
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    r = run("scan", empty, "-m", tiny_model_path)
    assert r.exit_code == 2 and "no images given" in r.stderr


# --- scan: inputs -----------------------------------------------------------------------


def test_scan_stdin(good, image_folder, tiny_model_path):
    missing = str(image_folder / "missing.png")
    stdin = f"# a comment\n{good[1]}\n\n{missing}\n{good[0]}\n"
    r = run("scan", "-", "-m", tiny_model_path, "-f", "jsonl", input=stdin)
    assert r.exit_code == 1
    records = jsonl(r.stdout)
    assert [rec["path"] for rec in records] == [good[1], missing, good[0]]
    assert records[1]["error"]["code"] == "not-found"


def test_scan_list_file(good, tiny_model_path, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(good[:2]) + "\n")
    r = run("scan", "--list", listing, "-m", tiny_model_path, "-f", "jsonl")
    assert r.exit_code == 0
    assert [rec["path"] for rec in jsonl(r.stdout)] == good[:2]


def test_scan_include_exclude(image_folder, tiny_model_path):
    r = run("scan", image_folder, "-m", tiny_model_path, "-f", "jsonl", "--include", "*.png", "--exclude", "empty*")
    assert r.exit_code == 0
    assert sorted(Path(rec["path"]).name for rec in jsonl(r.stdout)) == ["big.png", "small.png", "square.png"]


# --- scan: resume -----------------------------------------------------------------------


SENTINEL = 0.123456


def sentinel_record(path: str) -> dict:
    return {"path": path, "status": "ok", "p_fake": SENTINEL, "verdict": "real", "threshold": 0.5,
            "tiles": 1, "padded": False, "seconds": 0.0, "warnings": [], "tile_scores": []}


def test_resume_skips_files_already_in_the_output(image_folder, tiny_model_path, tmp_path):
    out = tmp_path / "out.jsonl"
    done = str(image_folder / "big.png")
    out.write_text(json.dumps(sentinel_record(done)) + "\n")
    r = run("scan", image_folder, "-m", tiny_model_path, "-o", out, "--resume")
    assert r.exit_code == 1, r.output  # the bad files are still there
    assert "resuming: 1 file(s) already in" in r.stderr
    records = jsonl(out.read_text())
    assert len(records) == 7 and len({rec["path"] for rec in records}) == 7
    by_path = {rec["path"]: rec for rec in records}
    assert by_path[done]["p_fake"] == SENTINEL  # kept, not re-scanned
    assert by_path[str(image_folder / "photo.jpg")]["p_fake"] != SENTINEL
    assert not (tmp_path / "out.jsonl.partial.jsonl").exists()


def test_resume_picks_up_a_leftover_partial_file(good, tiny_model_path, tmp_path):
    out = tmp_path / "out.json"
    partial = tmp_path / "out.json.partial.jsonl"
    partial.write_text(json.dumps(sentinel_record(good[0])) + "\n" + '{"path": "' + good[1][:10])  # cut by a crash
    r = run("scan", *good, "-m", tiny_model_path, "-o", out, "--resume")
    assert r.exit_code == 0, r.output
    assert "resuming: 1 file(s)" in r.stderr
    records = json.loads(out.read_text())
    assert [rec["path"] for rec in records] == good  # the cut record was redone
    assert records[0]["p_fake"] == SENTINEL
    assert all(rec["p_fake"] != SENTINEL for rec in records[1:])
    assert not partial.exists()


def test_resume_when_everything_is_done(good, tiny_model_path, tmp_path):
    out = tmp_path / "out.csv"
    assert run("scan", *good, "-m", tiny_model_path, "-o", out).exit_code == 0
    first = out.read_text()
    r = run("scan", *good, "-m", tiny_model_path, "-o", out, "--resume")
    assert r.exit_code == 0
    assert f"resuming: {len(good)} file(s)" in r.stderr
    assert out.read_text() == first


def test_without_resume_the_output_is_replaced(good, tiny_model_path, tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text(json.dumps(sentinel_record(good[0])) + "\n")
    assert run("scan", good[0], "-m", tiny_model_path, "-o", out).exit_code == 0
    (rec,) = jsonl(out.read_text())
    assert rec["p_fake"] != SENTINEL


# --- the real entry point -----------------------------------------------------------------


def test_python_m_synthscan_exit_code(good, image_folder, tiny_model_path, tmp_path):
    # One real process (importing torch is slow): one good and one bad file -> exit code 1, with
    # the results printed and no traceback (a crash would also exit 1).
    cmd = [sys.executable, "-m", "synthscan", "scan", "-m", str(tiny_model_path), "-f", "json",
           good[0], str(image_folder / "notes.jpg")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "1 of 2 file(s) could not be scanned" in proc.stderr
    records = json.loads(proc.stdout)
    assert [(rec["path"], rec["status"]) for rec in records] == [(good[0], "ok"), (str(image_folder / "notes.jpg"), "error")]
    assert records[1]["error"]["code"] == "not-an-image"


# --- models -----------------------------------------------------------------------------


def test_models_lists_detectors():
    r = run("models")
    assert r.exit_code == 0, r.output
    assert "npr" in r.stdout and "spectral-dae" in r.stdout
    assert "tiles 256px" in r.stdout and "tiles 128px" in r.stdout
    assert "Bundled models" in r.stdout


def test_every_bundled_model_says_what_it_is_for():
    """A research model ships beside the default: the listing must tell users which is which."""
    from synthscan.detectors.registry import list_bundled_models

    purposes = {name: info.purpose for name, info in list_bundled_models().items()}
    assert all(purposes.values()), purposes
    assert purposes["synthscan-default"].startswith("the default")
    assert "not for verdicts" in purposes["synthscan-lite0-adv4-long"]


# --- eval and train on tiny folder datasets ---------------------------------------------------


def _rgb(label: str, rng: np.random.Generator, size: int) -> np.ndarray:
    if label == "real":
        return rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    # "fakes" are nearest-upsampled noise: the NPR artifact, for what it is worth at this size
    small = rng.integers(0, 256, (size // 2, size // 2, 3), dtype=np.uint8)
    return np.kron(small, np.ones((2, 2, 1), dtype=np.uint8))


def make_dataset(root: Path, n_train: int, n_val: int, size: int = 64) -> Path:
    """real/ and fake/genA/ with, per class, n_train files that the trainer's hash split puts in
    train and n_val files it puts in val (`zlib.crc32(path) % 5 == 0` is val)."""
    rng = np.random.default_rng(0)
    for label, folder in (("real", root / "real"), ("fake", root / "fake" / "genA")):
        folder.mkdir(parents=True)
        counts, i = {True: 0, False: 0}, 0
        while counts[False] < n_train or counts[True] < n_val:
            path = folder / f"{label}{i:03d}.png"
            i += 1
            is_val = zlib.crc32(str(path).encode()) % 5 == 0
            if counts[is_val] >= (n_val if is_val else n_train):
                continue
            counts[is_val] += 1
            Image.fromarray(_rgb(label, rng, size)).save(path)
    return root


def test_eval_folder_dataset(tmp_path, tiny_model_path):
    data = make_dataset(tmp_path / "ds", n_train=2, n_val=1)
    report = tmp_path / "report.json"
    md = tmp_path / "report.md"
    r = run("eval", data, "-m", tiny_model_path, "--json", report, "--markdown", md)
    assert r.exit_code == 0, r.output
    assert "genA" in r.stdout and "Per generator" in r.stdout and "Overall" in r.stdout
    rep = json.loads(report.read_text())
    assert set(rep["per_generator"]) == {"genA", "real"}
    assert rep["overall"]["n"] == 6 and rep["overall"]["n_fake"] == 3
    assert rep["per_generator"]["genA"]["n"] == 3 and rep["per_generator"]["genA"]["n_real"] == 3
    assert rep["model"] == "tiny-npr" and rep["errors"] == 0 and rep["threshold"] == 0.5
    assert "genA" in md.read_text()


def test_eval_counts_unreadable_files_and_exits_1(tmp_path, tiny_model_path):
    data = make_dataset(tmp_path / "ds", n_train=2, n_val=1)
    (data / "fake" / "genA" / "broken.png").write_bytes(b"")
    report = tmp_path / "report.json"
    r = run("eval", data, "-m", tiny_model_path, "--json", report)
    assert r.exit_code == 1
    rep = json.loads(report.read_text())
    assert rep["errors"] == 1 and rep["overall"]["n"] == 6


def test_eval_usage_errors(tmp_path, tiny_model_path):
    (tmp_path / "flat").mkdir()
    assert run("eval", tmp_path / "flat", "-m", tiny_model_path).exit_code == 2
    data = make_dataset(tmp_path / "ds", n_train=1, n_val=0)
    assert run("eval", data, "-m", tmp_path / "nope.json").exit_code == 2


def test_train_npr_and_resume(tmp_path):
    data = make_dataset(tmp_path / "ds", n_train=6, n_val=2)
    out = tmp_path / "out"
    args = ["train", "--detector", "npr", "--data", data, "--out", out, "--name", "tiny",
            "--crop-size", "64", "--batch-size", "4", "--seed", "1"]
    r = run(*args, "--epochs", "1")
    assert r.exit_code == 0, r.output
    assert "loaded 12 train / 4 val images" in r.stdout
    json_path = out / "tiny.json"
    assert json_path.exists() and (out / "tiny.safetensors").exists()
    model = CalibratedModel.load(json_path)
    assert (model.info.detector, model.name, model.version) == ("npr", "tiny", "0.1.0")
    d = model.info.decision
    assert 0 <= d.uncertain_low <= d.threshold <= d.uncertain_high <= 1
    assert model.info.calibration.fitted_on == "val split"
    assert model.info.training["epochs_run"] == 1 and model.info.training["train_images"] == 12
    log = jsonl((out / "run" / "log.jsonl").read_text())
    assert [rec["epoch"] for rec in log] == [1]
    assert np.isfinite(log[0]["loss"]) and 0 <= log[0]["val_ap"] <= 1
    # The saved model scans.
    r = run("scan", next((data / "real").iterdir()), "-m", json_path, "-f", "json")
    assert r.exit_code == 0, r.output
    (res,) = json.loads(r.stdout)
    assert res["status"] == "ok" and res["model"] == "tiny"

    # Rerunning with more epochs resumes from the checkpoint instead of starting over.
    r = run(*args, "--epochs", "2")
    assert r.exit_code == 0, r.output
    assert "resumed from" in r.stdout and "after epoch 1" in r.stdout
    assert [rec["epoch"] for rec in jsonl((out / "run" / "log.jsonl").read_text())] == [1, 2]
    assert CalibratedModel.load(json_path).info.training["epochs_run"] == 2


def test_training_takes_at_least_one_step_per_epoch():
    # A training set smaller than the batch used to give 0 steps: no training and loss=nan.
    from synthscan.data.augment import AugmentConfig
    from synthscan.train.trainer import TrainConfig, _batches

    images = [np.zeros((64, 64, 3), np.uint8)] * 3
    cfg = TrainConfig(batch_size=32, augment=AugmentConfig(crop_size=32))
    batches = list(_batches(images, np.array([0, 1, 1]), np.full(3, 1 / 3), cfg, np.random.default_rng(0)))
    assert len(batches) == 1
    x, y = batches[0]
    assert x.shape == (32, 3, 32, 32) and y.shape == (32,)
    cfg.batch_size = 2
    assert len(list(_batches(images * 3, np.zeros(9), np.full(9, 1 / 9), cfg, np.random.default_rng(0)))) == 4


def test_train_usage_errors(tmp_path):
    (tmp_path / "flat").mkdir()
    base = ["train", "--data", tmp_path / "flat", "--out", tmp_path / "out"]
    r = run(*base, "--detector", "npr")
    assert r.exit_code == 2 and "real/" in r.output
    data = make_dataset(tmp_path / "ds", n_train=1, n_val=1)
    r = run("train", "--data", data, "--out", tmp_path / "out", "--detector", "no-such-detector")
    assert r.exit_code == 2 and "no-such-detector" in r.output


def test_beyond_the_counted_paths_the_rest_streams_in(image_folder, tiny_model_path, tmp_path, monkeypatch):
    import synthscan.cli.scan as scan_cli

    monkeypatch.setattr(scan_cli, "COUNTED_PATHS", 3)  # the folder holds 7 files: 4 arrive while scanning
    out = tmp_path / "out.jsonl"
    r = run("scan", image_folder, "-m", tiny_model_path, "-o", out)
    assert r.exit_code == 1, r.output
    records = jsonl(out.read_text())
    assert len({rec["path"] for rec in records}) == 7
    assert "3 of 7 file(s) could not be scanned" in r.stderr
    done = str(image_folder / "big.png")
    out.write_text(json.dumps(sentinel_record(done)) + "\n")
    r = run("scan", image_folder, "-m", tiny_model_path, "-o", out, "--resume")
    assert "resuming: skipping the 1 file(s) already in" in r.stderr
    by_path = {rec["path"]: rec for rec in jsonl(out.read_text())}
    assert len(by_path) == 7 and by_path[done]["p_fake"] == SENTINEL


def test_help_keeps_square_brackets():
    # Rich markup would swallow "[detector]" as a style tag: help texts escape it.
    r = CliRunner().invoke(app, ["train", "--help"], env=ENV)
    assert r.exit_code == 0 and "[detector], [train], [augment]" in r.output, r.output

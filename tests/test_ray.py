"""Ray on a local 2-CPU cluster: `scan --engine ray` (same scores as `Scanner`, resume, a killed actor,
bad files) and `train --engine ray` (DDP, checkpoints, resume).

Marked `ray` (deselect with `-m "not ray"`); Ray starts once for the module (a few seconds).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import BAD_FILES, GOOD_IMAGES, noise_rgb
from synthscan.scanning import Scanner

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
from synthscan.cli.report import read_results  # noqa: E402
from synthscan.scale.ray_scan import run_ray_scan  # noqa: E402

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    # Workers import synthscan from the same sources as this process.
    src = str(Path(__file__).resolve().parents[1] / "src")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", _node_ip_address="127.0.0.1",
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}})
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def _listing(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.iterdir())


def _by_path(results) -> dict:
    out = {}
    for r in results:
        assert r.path not in out, f"{r.path} scored twice"
        out[r.path] = r
    return out


def test_same_results_as_local_scan_and_bad_files_reported(tmp_path, tiny_model_path, image_folder):
    out = tmp_path / "run"
    summary = run_ray_scan(lambda: _listing(image_folder), str(out), model=str(tiny_model_path), actors=2,
                           shard_size=2)
    assert summary["shards"] == 4 and summary["scanned_shards"] == 4 and summary["files"] == 7
    assert summary["errors"] == len(BAD_FILES)
    remote = _by_path(read_results(str(out)))  # what `synthscan report OUT_DIR` reads
    local = _by_path(Scanner(tiny_model_path).scan_paths(_listing(image_folder)))
    assert remote.keys() == local.keys()
    for path, want in local.items():
        got = remote[path]
        assert got.status == want.status and got.verdict == want.verdict and got.sha256 == want.sha256
        assert got.p_fake == want.p_fake  # same code, same model: identical, not merely close
        assert [t.p_fake for t in got.tile_scores] == [t.p_fake for t in want.tile_scores]
        assert [t.box for t in got.tile_scores] == [t.box for t in want.tile_scores]
        assert got.warnings == want.warnings and got.error == want.error
    assert {Path(p).name: r.error.code for p, r in remote.items() if not r.ok} == BAD_FILES
    import pyarrow.parquet as pq

    table = pq.read_table(str(out))  # the folder reads as one table: _plan.parquet is skipped
    assert table.num_rows == 7 and set(table.column("path").to_pylist()) == set(local)
    assert {Path(p).name for p, r in remote.items() if r.ok} == set(GOOD_IMAGES)


def test_resume_scores_only_missing_shards(tmp_path, tiny_model_path, image_folder):
    out = tmp_path / "run"
    run_ray_scan(lambda: _listing(image_folder), str(out), model=str(tiny_model_path), actors=2, shard_size=2)
    # An interrupted run: shard 2 never finished (only a temporary file of it was left behind).
    (out / "shard-00002.parquet").unlink()
    (out / ".shard-00002.parquet.deadbeef.tmp").write_bytes(b"half a shard")
    kept = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.parquet")}

    def no_new_listing():
        raise AssertionError("a resumed run must reuse the plan, not list the inputs again")

    summary = run_ray_scan(no_new_listing, str(out), model=str(tiny_model_path), actors=2, shard_size=2)
    assert summary["resumed"] and summary["skipped_shards"] == 3 and summary["scanned_shards"] == 1
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.parquet") if p.name in kept} == kept
    assert set(_by_path(read_results(str(out)))) == set(_listing(image_folder))


def test_uris_are_read_through_pyarrow(tmp_path, tiny_model_path, image_folder):
    names = ["photo.jpg", "square.png", "notes.jpg", "absent.png"]
    uris = [(image_folder / n).as_uri() for n in names]
    run_ray_scan(lambda: uris, str(tmp_path / "run"), model=str(tiny_model_path), actors=1)
    remote = _by_path(read_results(str(tmp_path / "run")))
    local = _by_path(Scanner(tiny_model_path).scan_paths([str(image_folder / n) for n in names[:2]]))
    assert set(remote) == set(uris)
    for name, want in local.items():
        assert remote[Path(name).as_uri()].p_fake == want.p_fake
    assert remote[uris[2]].error.code == "not-an-image" and remote[uris[3]].error.code == "not-found"


def _own_processes_named(word: str) -> list[int]:
    """PIDs of this test's descendants (never another user's Ray) whose command line holds `word`."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(status.split("PPid:")[1].split()[0])
    mine, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - mine
        mine |= frontier
    found = []
    for pid in mine:
        try:
            if word in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                found.append(pid)
        except OSError:
            pass
    return found


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="finds the actor's process through /proc")
def test_killed_actor_loses_no_image(tmp_path, tiny_model_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(48):
        Image.fromarray(noise_rgb(256, 256, seed=i)).save(folder / f"{i:02d}.png")
    out = tmp_path / "run"
    summary: dict = {}
    run = threading.Thread(target=lambda: summary.update(run_ray_scan(
        lambda: _listing(folder), str(out), model=str(tiny_model_path), actors=2, shard_size=1)))
    run.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and run.is_alive() and time.monotonic() < deadline:
        if any(out.glob("shard-*.parquet")):  # the pool is working: kill one of its actors
            pids = _own_processes_named("ShardScorer")
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed = (pids[0], len(list(out.glob("shard-*.parquet"))))
        time.sleep(0.02)
    run.join(timeout=300)
    assert killed is not None and killed[1] < 48, "the run ended before an actor could be killed"
    assert summary["scanned_shards"] == 48 and summary["errors"] == 0
    results = _by_path(read_results(str(out)))
    assert set(results) == set(_listing(folder))
    local = _by_path(Scanner(tiny_model_path).scan_paths(sorted(results)[:4]))
    for path, want in local.items():
        assert results[path].p_fake == want.p_fake
    assert np.isfinite([r.p_fake for r in results.values()]).all()


def test_cli_scan_on_ray_then_report(tmp_path, tiny_model_path, image_folder):
    from typer.testing import CliRunner

    from synthscan.cli.main import app

    runner = CliRunner()
    out = tmp_path / "run"
    result = runner.invoke(app, ["scan", "--engine", "ray", str(image_folder), "--model", str(tiny_model_path),
                                 "--out", str(out)])
    assert result.exit_code == 1, result.output  # the folder holds bad files
    assert f"{len(BAD_FILES)} failed" in result.output
    rerun = runner.invoke(app, ["scan", "--engine", "ray", "--model", str(tiny_model_path), "--out", str(out)])
    rerun_text = " ".join(rerun.output.split())
    assert rerun.exit_code == 0 and "0 shard(s) scanned" in rerun_text, rerun.output  # nothing left to do
    assert "resuming:" in rerun_text and "not the ones given now" not in rerun_text  # no inputs were given
    result = runner.invoke(app, ["report", str(out), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    assert f"({len(GOOD_IMAGES) + len(BAD_FILES)} results)" in " ".join(result.output.split())


def _tiny_dataset(root: Path, per_class: int = 10) -> Path:
    """real/ (noise) and fake/genA/ (2x nearest-upsampled noise: an NPR trace), 64 px, with at least
    two files per class in the trainer's validation split (`zlib.crc32(path) % 5 == 0`)."""
    import zlib

    for label, folder in (("real", root / "real"), ("fake", root / "fake" / "genA")):
        folder.mkdir(parents=True)
        counts, i = {True: 0, False: 0}, 0
        while counts[True] < 2 or counts[False] < per_class - 2:
            path = folder / f"{label}{i:03d}.png"
            i += 1
            is_val = zlib.crc32(str(path).encode()) % 5 == 0
            if counts[is_val] >= (2 if is_val else per_class - 2):
                continue
            counts[is_val] += 1
            rgb = noise_rgb(64, 64, seed=i) if label == "real" else np.kron(
                noise_rgb(32, 32, seed=100 + i), np.ones((2, 2, 1), dtype=np.uint8))
            Image.fromarray(rgb).save(path)
    return root


def test_train_on_ray_checkpoints_and_resumes(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from synthscan.cli.main import app
    from synthscan.detectors.base import CalibratedModel

    monkeypatch.chdir(tmp_path)  # --data relative, as users type it: Ray workers run in another folder
    data = _tiny_dataset(Path("ds"))
    config = tmp_path / "tiny.toml"
    config.write_text('[detector]\nwidths = [4, 4, 8, 8]\n[detector.input]\ncrop_size = 64\n'
                      '[augment]\ncrop_size = 64\n')
    common = ["train", "--engine", "ray", "--num-workers", "2", "-d", "npr", "--data", str(data), "--track", "",
              "--out", str(tmp_path / "out"), "--config", str(config), "--batch-size", "4", "--patience", "9"]
    runner = CliRunner()
    first = runner.invoke(app, [*common, "--epochs", "2"])
    assert first.exit_code == 0, first.output
    model = CalibratedModel.load(tmp_path / "out" / "npr.json")
    assert model.info.training["engine"] == "ray" and model.info.training["epochs_run"] == 2, model.info.training
    assert model.info.training["resumed_from_epoch"] is None, model.info.training
    assert list((tmp_path / "out" / "ray" / "npr").glob("checkpoint_*"))
    second = runner.invoke(app, [*common, "--epochs", "3"])  # same run: continues from epoch 2
    assert second.exit_code == 0, second.output
    model = CalibratedModel.load(tmp_path / "out" / "npr.json")
    assert model.info.training["resumed_from_epoch"] == 2 and model.info.training["epochs_run"] == 3, (
        model.info.training, second.output)
    results = list(Scanner(model).scan_paths(sorted(str(p) for p in (data / "real").iterdir())[:2]))
    assert all(r.ok and 0.0 <= r.p_fake <= 1.0 for r in results)


def test_train_on_ray_refuses_texture_gbm(tmp_path):
    from typer.testing import CliRunner

    from synthscan.cli.main import app

    result = CliRunner().invoke(app, ["train", "--engine", "ray", "-d", "texture-gbm", "--data",
                                      str(_tiny_dataset(tmp_path / "ds", 2)), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "fitted in one shot" in result.output


def test_onnx_runtime_on_ray_matches_torch(tmp_path, tiny_model_path, image_folder):
    pytest.importorskip("onnxruntime")
    from synthscan.runtime.onnx_export import export_onnx

    export_onnx(str(tiny_model_path), tmp_path / "onnx")
    run_ray_scan(lambda: _listing(image_folder), str(tmp_path / "run"), model=str(tmp_path / "onnx"),
                 runtime="onnx", actors=2, shard_size=4)
    remote = _by_path(read_results(str(tmp_path / "run")))
    local = _by_path(Scanner(tiny_model_path).scan_paths(_listing(image_folder)))
    assert remote.keys() == local.keys()
    for path, want in local.items():
        assert remote[path].status == want.status
        if want.ok:
            assert abs(remote[path].p_fake - want.p_fake) < 1e-4

"""TOML training configs: bundled defaults, a user's file, and CLI options layered in that order."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthscan.train.config import ConfigError, bundled_config_path, read_config_file, resolve_config


@pytest.mark.parametrize("detector", ["npr", "spectral-dae"])
def test_every_bundled_config_resolves(detector):
    assert bundled_config_path(detector) is not None
    detector_config, train = resolve_config(detector)
    assert detector_config == read_config_file(bundled_config_path(detector))["detector"]
    assert train.epochs >= 1 and isinstance(train.augment.jpeg_quality, tuple)


def test_layers_bundled_then_file_then_options(tmp_path: Path):
    user = tmp_path / "mine.toml"
    user.write_text('[detector]\nwidths = [8, 8, 16, 16]\n[train]\nepochs = 3\nlr = 0.01\n'
                    '[augment]\njpeg_p = 0.1\njpeg_quality = [90, 100]\n')
    detector_config, train = resolve_config("npr", user, overrides={"train": {"epochs": 7, "lr": None}})
    assert detector_config["widths"] == [8, 8, 16, 16]
    assert detector_config["scales"] == [2, 4]  # untouched bundled value
    assert train.epochs == 7  # the option wins over the file
    assert train.lr == 0.01  # an option left unset (None) does not override
    assert train.augment.jpeg_p == 0.1 and train.augment.jpeg_quality == (90, 100)
    assert train.augment.blur_p == 0.25  # bundled


@pytest.mark.parametrize(
    "text, message",
    [
        ("[trian]\nepochs = 1\n", "unknown table"),
        ("[train]\nepoch = 1\n", "unknown setting(s) ['epoch']"),
        ("[augment]\njpeg_qualty = [1, 2]\n", "jpeg_qualty"),
        ("[detector]\nwidth = 3\n", "unknown setting(s) ['width']"),
        ("[detector]\nscales = 'two'\n", "[detector]"),
        ("[train\n", "cannot read config"),
        ("[augment]\njpeg_quality = [100, 50]\n", "[augment]"),
    ],
)
def test_config_errors_name_the_problem(tmp_path: Path, text: str, message: str):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=None) as info:
        resolve_config("npr", path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_train_cli_rejects_a_bad_config(tmp_path: Path):
    from typer.testing import CliRunner

    from synthscan.cli.main import app

    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nepoch = 1\n")
    (tmp_path / "ds").mkdir()
    r = CliRunner().invoke(app, ["train", "-d", "npr", "--data", str(tmp_path / "ds"), "--out", str(tmp_path / "o"),
                                 "--config", str(bad)])
    assert r.exit_code == 2 and "epoch" in r.output


def test_fit_with_a_step_bar(tmp_path: Path, capsys):
    from test_cli import make_dataset

    from synthscan.data.augment import AugmentConfig
    from synthscan.detectors.npr import NPRDetector
    from synthscan.train.recipe import split_samples
    from synthscan.train.trainer import TrainConfig, fit

    train, val = split_samples(make_dataset(tmp_path / "ds", n_train=4, n_val=1), track=None)
    detector = NPRDetector(NPRDetector.Config(widths=(4, 4, 8, 8)))
    cfg = TrainConfig(epochs=1, batch_size=4, augment=AugmentConfig(crop_size=32))
    _, summary = fit(detector, train, val, cfg, tmp_path / "run", progress=print, show_steps=True)
    assert summary["epochs_run"] == 1 and "epoch=1" in capsys.readouterr().out

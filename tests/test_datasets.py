"""Labelled datasets: manifest and folder layouts, and the errors reported before training."""

import numpy as np
import pytest
from PIL import Image

from synthscan.data.augment import AugmentConfig, augment
from synthscan.data.datasets import DatasetError, check_two_classes, read_dataset
from synthscan.train.recipe import split_samples
from synthscan.train.trainer import sample_weights


def _img(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(path)


def test_manifest_filters_split_and_track_and_resolves_paths(tmp_path):
    _img(tmp_path / "a.png")
    (tmp_path / "m.csv").write_text(
        "path,track,split,label,generator,family\n"
        "a.png,256,train,real,photos,real\n"
        "b.png,256,val,fake,sd,diffusion\n"
        "c.png,32,train,fake,gan1,gan\n"
    )
    train = read_dataset(tmp_path / "m.csv", split="train", track="256")
    assert [(s.path, s.label, s.generator, s.y) for s in train] == [(str(tmp_path / "a.png"), "real", "photos", 0)]
    assert {s.family for s in read_dataset(tmp_path / "m.csv")} == {"real", "diffusion", "gan"}


def test_manifest_errors_are_specific(tmp_path):
    (tmp_path / "m.csv").write_text("file,label\nx.png,real\n")
    with pytest.raises(DatasetError, match="lacks column"):
        read_dataset(tmp_path / "m.csv")
    (tmp_path / "m.csv").write_text("path,label\nx.png,maybe\n")
    with pytest.raises(DatasetError, match="real\\|fake"):
        read_dataset(tmp_path / "m.csv")


def test_folder_layout_and_missing_class(tmp_path):
    _img(tmp_path / "real" / "r.jpg")
    _img(tmp_path / "fake" / "genA" / "f.png")
    samples = read_dataset(tmp_path)
    assert sorted((s.label, s.generator) for s in samples) == [("fake", "genA"), ("real", "real")]
    with pytest.raises(DatasetError, match="only real"):
        check_two_classes([s for s in samples if s.label == "real"], "training set")
    with pytest.raises(DatasetError, match="expected folders"):
        read_dataset(tmp_path / "real")


def test_leaving_a_family_out_removes_it_from_train_and_val(tmp_path):
    rows = ["path,split,label,generator,family"]
    for i, (split, label, gen, fam) in enumerate(
        [("train", "real", "p", "real"), ("train", "fake", "g", "gan"), ("train", "fake", "d", "diffusion"),
         ("val", "real", "p", "real"), ("val", "fake", "g", "gan"), ("val", "fake", "d", "diffusion")]
    ):
        rows.append(f"{i}.png,{split},{label},{gen},{fam}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    train, val = split_samples(tmp_path / "m.csv", track=None, exclude_families=("gan",))
    assert {s.family for s in train} == {s.family for s in val} == {"real", "diffusion"}


def test_sampling_balances_classes_and_damps_big_generators(tmp_path):
    from synthscan.data.datasets import Sample

    samples = [Sample("r", "real", "p", "real")] * 4 + [Sample("a", "fake", "big", "x")] * 9 + [Sample("b", "fake", "small", "x")]
    w = sample_weights(samples)
    y = np.array([s.y for s in samples])
    assert w[y == 0].sum() == pytest.approx(0.5) and w[y == 1].sum() == pytest.approx(0.5)
    assert w[4:13].sum() / w[13] == pytest.approx(3.0)  # 9 images / sqrt(9) vs 1 / sqrt(1)


def test_augment_is_seeded_and_keeps_shape():
    img = np.random.default_rng(1).integers(0, 256, (100, 120, 3), dtype=np.uint8)
    cfg = AugmentConfig(crop_size=64, jpeg_p=1.0, blur_p=1.0, resized_crop_p=0.5, noise_p=1.0)
    a = augment(img, cfg, np.random.default_rng(7))
    b = augment(img, cfg, np.random.default_rng(7))
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    assert augment(img[:30, :30], AugmentConfig(crop_size=64), np.random.default_rng(0)).shape == (64, 64, 3)

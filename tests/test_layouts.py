"""Dataset layouts: each one recognised and read from a tiny tree, and each error reported clearly."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthscan.data.datasets import DatasetError, detect_layout, read_dataset
from synthscan.data.validate import validate_samples


def _img(path, seed=0, size=(16, 16)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)


def _rows(samples, root):
    """(relative path, label, generator, family, split, category) per sample, sorted."""
    return sorted(
        (Path(s.path).relative_to(root).as_posix(), s.label, s.generator, s.family, s.split, s.category)
        for s in samples
    )


def test_folder_layout(tmp_path):
    _img(tmp_path / "real" / "a.jpg")
    _img(tmp_path / "fake" / "sd" / "b.png")
    _img(tmp_path / "fake" / "loose.png")
    assert detect_layout(tmp_path) == "folder"
    assert _rows(read_dataset(tmp_path), tmp_path) == [
        ("fake/loose.png", "fake", "unknown", "unknown", "", ""),
        ("fake/sd/b.png", "fake", "sd", "unknown", "", ""),
        ("real/a.jpg", "real", "real", "real", "", ""),
    ]
    # A folder layout has no splits: asking for one keeps everything.
    assert len(read_dataset(tmp_path, split="val")) == 3


def test_manifest_layout_file_or_folder(tmp_path):
    _img(tmp_path / "x.png")
    (tmp_path / "manifest.csv").write_text("path,split,label,generator,family\nx.png,val,fake,gan1,gan\n")
    for source in (tmp_path / "manifest.csv", tmp_path):
        assert detect_layout(source) == "manifest"
        assert _rows(read_dataset(source, split="val"), tmp_path) == [("x.png", "fake", "gan1", "gan", "val", "")]
    with pytest.raises(DatasetError, match="no images in split 'train'"):
        read_dataset(tmp_path, split="train")


def test_cifake_layout_maps_test_to_val(tmp_path):
    _img(tmp_path / "train" / "REAL" / "0.jpg")
    _img(tmp_path / "train" / "FAKE" / "1.jpg")
    _img(tmp_path / "test" / "REAL" / "2.jpg")
    _img(tmp_path / "test" / "FAKE" / "3.jpg")
    assert detect_layout(tmp_path) == "cifake"
    assert _rows(read_dataset(tmp_path), tmp_path) == [
        ("test/FAKE/3.jpg", "fake", "unknown", "unknown", "val", ""),
        ("test/REAL/2.jpg", "real", "real", "real", "val", ""),
        ("train/FAKE/1.jpg", "fake", "unknown", "unknown", "train", ""),
        ("train/REAL/0.jpg", "real", "real", "real", "train", ""),
    ]
    assert {s.split for s in read_dataset(tmp_path, split="val")} == {"val"}


def test_genimage_layout_names_generators_from_folders(tmp_path):
    for gen in ("ADM", "BigGAN"):
        for split in ("train", "val"):
            _img(tmp_path / gen / split / "ai" / f"{gen}{split}.png")
            _img(tmp_path / gen / split / "nature" / f"n{gen}{split}.JPEG")
    # The released archives nest one level more: VQDM/imagenet_ai_0419_vqdm/train/ai.
    _img(tmp_path / "VQDM" / "imagenet_ai_0419_vqdm" / "train" / "ai" / "v.png")
    _img(tmp_path / "VQDM" / "imagenet_ai_0419_vqdm" / "train" / "nature" / "w.png")
    assert detect_layout(tmp_path) == "genimage"
    samples = read_dataset(tmp_path)
    assert len(samples) == 10
    assert {(s.generator, s.split) for s in samples if s.label == "fake"} == {
        ("ADM", "train"), ("ADM", "val"), ("BigGAN", "train"), ("BigGAN", "val"), ("VQDM", "train")}
    assert {(s.generator, s.family) for s in samples if s.label == "real"} == {("real", "real")}
    assert {s.family for s in samples if s.label == "fake"} == {"unknown"}
    # One generator's folder alone is a dataset too, named after the folder.
    assert {s.generator for s in read_dataset(tmp_path / "ADM") if s.label == "fake"} == {"ADM"}


def test_forensynths_layout_with_and_without_splits(tmp_path):
    root = tmp_path / "cnnspot"
    _img(root / "train" / "airplane" / "0_real" / "a.png")
    _img(root / "train" / "airplane" / "1_fake" / "b.png")
    _img(root / "val" / "car" / "0_real" / "c.png")
    _img(root / "val" / "car" / "1_fake" / "d.png")
    _img(root / "test" / "stylegan" / "bedroom" / "0_real" / "e.png")
    _img(root / "test" / "stylegan" / "bedroom" / "1_fake" / "f.png")
    assert detect_layout(root) == "forensynths"
    assert _rows(read_dataset(root), root) == [
        ("test/stylegan/bedroom/0_real/e.png", "real", "real", "real", "test", "bedroom"),
        ("test/stylegan/bedroom/1_fake/f.png", "fake", "stylegan", "unknown", "test", "bedroom"),
        ("train/airplane/0_real/a.png", "real", "real", "real", "train", "airplane"),
        ("train/airplane/1_fake/b.png", "fake", "cnnspot", "unknown", "train", "airplane"),
        ("val/car/0_real/c.png", "real", "real", "real", "val", "car"),
        ("val/car/1_fake/d.png", "fake", "cnnspot", "unknown", "val", "car"),
    ]
    # No generator folder: the folder given names the generator (unless it is a split folder).
    assert {s.generator for s in read_dataset(root / "train") if s.label == "fake"} == {"unknown"}
    gen = root / "test" / "stylegan"
    assert [(s.generator, s.split, s.category) for s in read_dataset(gen) if s.label == "fake"] == [
        ("stylegan", "", "bedroom")]
    _img(tmp_path / "progan" / "cat" / "0_real" / "g.png")
    _img(tmp_path / "progan" / "cat" / "1_fake" / "h.png")
    assert [(s.generator, s.split, s.category) for s in read_dataset(tmp_path / "progan") if s.label == "fake"] == [
        ("progan", "", "cat")]


def test_explicit_layout_overrides_detection(tmp_path):
    # Both real/ (folder layout) and train/REAL (CIFAKE) exist: detection picks the folder layout.
    _img(tmp_path / "real" / "a.png")
    _img(tmp_path / "fake" / "g" / "b.png")
    _img(tmp_path / "train" / "REAL" / "c.png")
    _img(tmp_path / "train" / "FAKE" / "d.png")
    assert {s.split for s in read_dataset(tmp_path)} == {""}
    assert {s.split for s in read_dataset(tmp_path, layout="cifake")} == {"train"}
    with pytest.raises(DatasetError, match="unknown dataset layout 'imagenet'; known: manifest, folder, cifake"):
        read_dataset(tmp_path, layout="imagenet")


def test_unrecognised_layout_says_what_was_tried_and_found(tmp_path):
    _img(tmp_path / "cats" / "a.png")
    _img(tmp_path / "dogs" / "b.png")
    _img(tmp_path / "c.png")
    with pytest.raises(DatasetError) as exc:
        read_dataset(tmp_path)
    msg = str(exc.value)
    assert "unrecognised dataset layout" in msg
    for tried in ("manifest ", "folder       expected folders real/ and fake/<generator>/", "cifake ", "genimage ", "forensynths "):
        assert f"\n  {tried}" in msg
    assert msg.endswith("\nFound: 2 folder(s) [cats/, dogs/] and 1 file(s), 1 of them images")
    with pytest.raises(DatasetError, match="no such file or folder"):
        read_dataset(tmp_path / "nope")
    with pytest.raises(DatasetError, match="a file with extension '.png'"):
        read_dataset(tmp_path / "c.png")


@pytest.mark.parametrize(
    ("tree", "layout", "message"),
    [
        (["real/a.png"], None, "folder layout: missing fake/"),
        (["train/REAL/a.png", "test/REAL/b.png"], None, "cifake layout: missing train/FAKE/, test/FAKE/"),
        (["sd/train/ai/a.png", "sd/val/nature/b.png"], None, "genimage layout: missing sd/train/nature/, sd/val/ai/"),
        (["biggan/cat/1_fake/a.png"], None, "forensynths layout: missing biggan/cat/0_real/"),
        (["real/a.png"], "cifake", "cifake layout: missing train/ and test/"),
        (["real/a.png"], "genimage", "genimage layout: no <generator>/train|val/ai|nature/ folders"),
        (["real/a.png"], "forensynths", "forensynths layout: no 0_real/ or 1_fake/ folders"),
    ],
)
def test_missing_folders_are_named(tmp_path, tree, layout, message):
    for i, rel in enumerate(tree):
        _img(tmp_path / rel, seed=i)
    with pytest.raises(DatasetError, match=message.replace("|", "\\|")):
        read_dataset(tmp_path, layout=layout)


@pytest.mark.parametrize(
    ("tree", "empty"),
    [
        (["real/a.png", "fake/sd/"], "fake/sd/"),
        (["train/REAL/a.png", "train/FAKE/notes.txt"], "train/FAKE/"),
        (["gen/val/ai/a.png", "gen/val/nature/"], "gen/val/nature/"),
        (["x/0_real/", "x/1_fake/a.png"], "x/0_real/"),
    ],
)
def test_empty_class_folders_are_named(tmp_path, tree, empty):
    for rel in tree:
        if rel.endswith("/"):
            (tmp_path / rel).mkdir(parents=True)
        elif rel.endswith(".txt"):
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_text("not an image")
        else:
            _img(tmp_path / rel)
    with pytest.raises(DatasetError, match=f"empty class folder\\(s\\) {empty} \\(no files with an image extension"):
        read_dataset(tmp_path)


def test_validate_samples_lists_unreadable_images_with_reason_codes(tmp_path):
    _img(tmp_path / "real" / "good.png")
    _img(tmp_path / "fake" / "g" / "good.png", seed=1)
    (tmp_path / "fake" / "g" / "empty.png").write_bytes(b"")
    (tmp_path / "fake" / "g" / "notes.jpg").write_text("hello, not a picture")
    good = (tmp_path / "real" / "good.png").read_bytes()
    (tmp_path / "real" / "trunc.png").write_bytes(good[: len(good) // 2])
    samples = read_dataset(tmp_path)
    seen = []
    report = validate_samples(samples, progress=lambda done, total: seen.append((done, total)))
    assert report.checked == report.total == 5 and seen[-1] == (5, 5) and len(seen) == 5
    assert sorted((f.path.split("/")[-1], f.code) for f in report.failures) == [
        ("empty.png", "empty"), ("notes.jpg", "not-an-image"), ("trunc.png", "truncated")]
    summary = report.summary()
    assert summary.startswith("3 of 5 image(s) cannot be used:") and "not-an-image" in summary
    with pytest.raises(DatasetError, match="3 of 5 image\\(s\\) cannot be used"):
        report.raise_if_failed()
    # Without decoding, only missing or empty files are caught.
    (tmp_path / "real" / "good.png").unlink()
    quick = validate_samples(samples, check_images=False)
    assert sorted(f.code for f in quick.failures) == ["empty", "not-found"]


def test_validate_samples_stops_at_the_time_limit(tmp_path):
    _img(tmp_path / "real" / "a.png")
    _img(tmp_path / "fake" / "g" / "b.png")
    samples = read_dataset(tmp_path) * 100  # repeated paths are checked once
    report = validate_samples(samples, time_limit_s=0)
    assert report.total == 2 and report.checked == 0 and report.unchecked == 2
    assert "2 image(s) were not checked (time limit reached)" in report.summary()
    assert validate_samples(samples, time_limit_s=60).checked == 2


def test_training_refuses_a_dataset_with_an_unreadable_image(tmp_path):
    from synthscan.train.recipe import train_detector

    for i, split in enumerate(("train", "train", "test")):
        _img(tmp_path / split / "REAL" / f"r{i}.png", seed=i, size=(32, 32))
        _img(tmp_path / split / "FAKE" / f"f{i}.png", seed=10 + i, size=(32, 32))
    (tmp_path / "train" / "FAKE" / "f0.png").write_text("oops")
    with pytest.raises(DatasetError, match="not-an-image"):
        train_detector("npr", tmp_path, tmp_path / "out", name="x", track=None)
    assert not (tmp_path / "out").exists()  # refused before the training folder was made

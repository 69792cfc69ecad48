"""FGSM/PGD against closed-form optima on a linear toy model (and torchattacks where installed),
attack evaluation on the tiny model, and the adversarial-training hook."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_cli import make_dataset, run

from synthscan.evaluate.adversarial import AttackSpec, adversarial_batch, attack, parse_attack


class Linear(torch.nn.Module):
    """f(x) = <w, x> + b over all pixels: the loss-maximising perturbation is known exactly."""

    def __init__(self, shape=(3, 8, 8), seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = torch.nn.Parameter(torch.randn(shape, generator=g))
        self.b = torch.nn.Parameter(torch.tensor(0.1))

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1) + self.b


def _inputs(n=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = 0.3 + 0.4 * torch.rand(n, 3, 8, 8, generator=g)  # interior: no clipping at eps <= 0.1
    return x, torch.tensor([1.0, 0.0, 1.0, 0.0])[:n]


def test_parse_attack():
    s = parse_attack("pgd:eps=2/255,steps=5")
    assert (s.method, s.norm, s.steps) == ("pgd", "linf", 5) and s.eps == pytest.approx(2 / 255)
    assert s.step_size == pytest.approx(2.5 * 2 / 255 / 5) and s.label == "pgd:linf,eps=2/255,steps=5"
    assert parse_attack("fgsm:eps=0.5,norm=l2").step_size == 0.5
    for bad in ("cw:eps=1", "pgd:steps=3", "pgd:eps=2/0", "fgsm:eps=1,steps=3", "pgd:eps=1,norm=l1", "pgd:eps=1,fraction=2"):
        with pytest.raises(ValueError):
            parse_attack(bad)


@pytest.mark.parametrize("spec", ["fgsm:eps=0.05", "pgd:eps=0.05,steps=10", "pgd:eps=0.05,steps=10,random_start=false"])
def test_linf_attacks_reach_the_linear_optimum(spec):
    f, (x, y) = Linear(), _inputs()
    adv = attack(f, x, y, parse_attack(spec), torch.Generator().manual_seed(0))
    # fakes (y=1) go against w, reals along it, by eps in every pixel
    direction = torch.where(y.view(-1, 1, 1, 1) == 1, -1.0, 1.0) * f.w.sign()
    torch.testing.assert_close(adv, x + 0.05 * direction)


def test_l2_pgd_reaches_the_linear_optimum():
    f, (x, y) = Linear(), _inputs()
    adv = attack(f, x, y, parse_attack("pgd:eps=0.5,steps=10,norm=l2,random_start=false"))
    unit = f.w / f.w.norm()
    sign = torch.where(y == 1, -1.0, 1.0)
    torch.testing.assert_close(adv, x + 0.5 * sign.view(-1, 1, 1, 1) * unit, atol=1e-5, rtol=0)
    # from a random start the projection shrinks the random part step by step: near the optimum
    adv = attack(f, x, y, parse_attack("pgd:eps=0.5,steps=10,norm=l2"), torch.Generator().manual_seed(0))
    assert (adv - x).flatten(1).norm(dim=1).max() <= 0.5 + 1e-5
    gain = (f(adv) - f(x)) * sign / (0.5 * f.w.norm())  # 1 at the optimum
    assert gain.min() > 0.95


def test_attacks_stay_in_the_box_and_the_ball():
    f = Linear()
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(3))  # pixels near 0 and 1 get clipped
    y = torch.tensor([1.0, 0.0, 1.0, 0.0])
    for spec in ("pgd:eps=8/255,steps=3", "pgd:eps=1,steps=3,norm=l2"):
        adv = attack(f, x, y, parse_attack(spec))
        assert adv.min() >= 0 and adv.max() <= 1
        d = adv - x
        size = d.abs().amax() if "l2" not in spec else d.flatten(1).norm(dim=1).max()
        assert size <= parse_attack(spec).eps + 1e-6


@pytest.mark.parametrize("which", ["fgsm", "pgd", "pgdl2"])
def test_matches_torchattacks_on_a_small_cnn(which):
    torchattacks = pytest.importorskip("torchattacks")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 1))
    f = lambda x: net(x).squeeze(1)  # noqa: E731
    two_class = torch.nn.Sequential()  # CE over [0, z] is BCE over z
    two_class.forward = lambda x: torch.stack([torch.zeros(len(x)), f(x)], 1)
    x, y = _inputs()
    ours = {"fgsm": AttackSpec("fgsm", eps=0.03),
            "pgd": AttackSpec("pgd", eps=0.03, steps=5, alpha=0.01, random_start=False),
            "pgdl2": AttackSpec("pgd", eps=0.3, steps=5, alpha=0.1, norm="l2", random_start=False)}[which]
    ref = {"fgsm": lambda: torchattacks.FGSM(two_class, eps=0.03),
           "pgd": lambda: torchattacks.PGD(two_class, eps=0.03, alpha=0.01, steps=5, random_start=False),
           "pgdl2": lambda: torchattacks.PGDL2(two_class, eps=0.3, alpha=0.1, steps=5, random_start=False)}[which]()
    torch.testing.assert_close(attack(f, x, y, ours), ref(x, y.long()), atol=1e-5, rtol=0)


def test_adversarial_batch_restores_modes_and_keeps_the_clean_half():
    det = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten(),
                              torch.nn.Linear(2 * 6 * 6, 1), torch.nn.Flatten(0))
    det.train()
    det[1].eval()  # a frozen stage stays frozen
    running = det[1].running_mean.clone()
    x, y = _inputs()
    out = adversarial_batch(det, x, y, parse_attack("pgd:eps=2/255,steps=2"))
    assert det.training and det[0].training and not det[1].training
    torch.testing.assert_close(det[1].running_mean, running)  # crafting moved no statistics
    assert torch.equal(out[2:], x[2:]) and not torch.equal(out[:2], x[:2])


def test_eval_attack_cli_white_box_and_transfer(tmp_path, tiny_model_path):
    data = make_dataset(tmp_path / "ds", n_train=3, n_val=0)
    js = tmp_path / "attacks.json"
    r = run("eval", data, "-m", tiny_model_path, "--compare", tiny_model_path, "--attack", "fgsm:eps=8/255",
            "--attack", "pgd:eps=8/255,steps=3", "--json", js)
    assert r.exit_code == 0, r.output
    rows = json.loads(js.read_text())
    assert [(x["attack"], x["kind"]) for x in rows] == [
        ("fgsm:linf,eps=8/255", "white-box"), ("fgsm:linf,eps=8/255", "transfer (black-box)"),
        ("pgd:linf,eps=8/255,steps=3", "white-box"), ("pgd:linf,eps=8/255,steps=3", "transfer (black-box)")]
    assert rows[0]["n_fake"] == 3 and rows[0]["n_real"] == 3
    # the same model as transfer target scores the same pixels: identical numbers
    assert {k: v for k, v in rows[0].items() if k not in ("kind",)} == {k: v for k, v in rows[1].items() if k != "kind"}
    assert run("eval", data, "-m", tiny_model_path, "--attack", "cw:eps=1").exit_code == 2


def test_gradient_free_model_is_refused_as_attack_source(tiny_model):
    from synthscan.evaluate.attack_eval import is_differentiable

    assert is_differentiable(tiny_model)

    class Frozen(torch.nn.Module):
        input_policy = tiny_model.input_policy

        def forward(self, x):
            return torch.from_numpy(np.zeros(len(x), np.float32))

    class M:
        detector, input_policy = Frozen(), tiny_model.input_policy

    assert not is_differentiable(M())


def test_train_adversarial_option_is_checked():
    assert run("train", "-d", "npr", "--data", ".", "--out", "x", "--adversarial", "pgd:steps=3").exit_code == 2
    r = run("train", "-d", "texture-gbm", "--data", ".", "--out", "x", "--adversarial", "pgd:eps=2/255")
    assert r.exit_code == 2 and "gradient descent" in r.output


def test_train_adversarial_attacks_every_batch(tmp_path, monkeypatch):
    import synthscan.train.trainer as trainer
    from synthscan.detectors.base import CalibratedModel

    calls = []
    real = trainer.adversarial_batch

    def counted(det, x, y, spec):
        calls.append((len(x), spec))
        return real(det, x, y, spec)

    monkeypatch.setattr(trainer, "adversarial_batch", counted)
    data = make_dataset(tmp_path / "ds", n_train=4, n_val=2)
    r = run("train", "-d", "npr", "--data", data, "--out", tmp_path / "o", "--name", "adv", "--crop-size", "64",
            "--batch-size", "4", "--epochs", "1", "--adversarial", "pgd:eps=2/255,steps=2")
    assert r.exit_code == 0, r.output
    assert len(calls) == 2 and calls[0][1] == parse_attack("pgd:eps=2/255,steps=2")  # 8 images / batch 4
    saved = CalibratedModel.load(tmp_path / "o" / "adv.json")
    assert saved.info.training["config"]["adversarial"] == "pgd:eps=2/255,steps=2"


def test_train_init_starts_from_a_trained_model(tmp_path):
    """--init: the run starts from the given model's weights (so one epoch at lr 0 keeps them) and
    records where it started; a model of another detector is refused."""
    from synthscan.detectors.base import CalibratedModel

    data = make_dataset(tmp_path / "ds", n_train=4, n_val=2)
    common = ["--data", data, "--crop-size", "64", "--batch-size", "4", "--epochs", "1"]
    assert run("train", "-d", "npr", *common, "--out", tmp_path / "a", "--name", "base").exit_code == 0
    base = tmp_path / "a" / "base.json"
    r = run("train", "-d", "npr", *common, "--out", tmp_path / "b", "--name", "tuned", "--init", base,
            "--lr", "0", "--adversarial", "pgd:eps=2/255,steps=1")
    assert r.exit_code == 0, r.output
    before, after = CalibratedModel.load(base), CalibratedModel.load(tmp_path / "b" / "tuned.json")
    tuned = dict(after.detector.named_parameters())  # BatchNorm's running statistics move even at lr 0
    for key, value in before.detector.named_parameters():
        assert torch.equal(value, tuned[key]), key
    assert after.info.training["init"] == str(base)
    r = run("train", "-d", "spectral-dae", *common, "--out", tmp_path / "c", "--init", base)
    assert r.exit_code == 2 and "is a npr model, not spectral-dae" in r.output
    r = run("train", "-d", "npr", *common, "--out", tmp_path / "d", "--init", base, "--engine", "ray")
    assert r.exit_code == 2 and "--init is not supported with --engine ray" in r.output
    r = run("train", "-d", "npr", *common, "--out", tmp_path / "e", "--init", tmp_path / "missing.json")
    assert r.exit_code == 2 and "missing.json" in r.output

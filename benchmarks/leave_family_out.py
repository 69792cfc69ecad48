"""Choose the default detector: val split and leave-one-generator-family-out (LOFO).

For each candidate detector this trains (unless already trained in --runs) three models with
`synthscan train`: on the whole train split, without GANs and without diffusion models. The
full model is scored on the val split; each leave-out model is scored on the family it never
saw (its fakes from train and val splits) against the val split's real photos, which no model
trained on. Writes Markdown + JSON tables.

    python benchmarks/leave_family_out.py --data ../shared/synthbench/manifest.csv

Needs ../shared/synthbench (not available in CI): a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

from synthscan.data.datasets import read_manifest
from synthscan.evaluate.metrics import binary_metrics
from synthscan.scanning import Scanner

# candidate -> (`synthscan train` arguments of its full model, epochs of its leave-out models).
# spectral-dae costs ~3x more per step on CPU, so its full model got fewer epochs; `npr-recipe` is
# the bundled synthscan-npr model's recipe (recipes/synthscan-npr.toml), `texture-gbm-recipe` the
# bundled fast model's (recipes/synthscan-fast.toml).
CANDIDATES = {
    "npr": (["--detector", "npr", "--epochs", "8", "--crop-size", "96"], 4),
    "spectral-dae": (["--detector", "spectral-dae", "--epochs", "4", "--crop-size", "128"], 4),
    "npr-recipe": (["--detector", "npr", "--config", "recipes/synthscan-npr.toml"], 12),
    "texture-gbm": (["--detector", "texture-gbm"], 1),  # fitted in one pass: epochs do not apply
    "texture-gbm-recipe": (["--detector", "texture-gbm", "--config", "recipes/synthscan-fast.toml"], 1),
}
FAMILIES = ("gan", "diffusion")


def train_command(candidate: str, data: str, runs: Path, left_out: str | None) -> list[str]:
    args, lofo_epochs = CANDIDATES[candidate]
    if left_out and "--epochs" in args:  # the leave-out models have their own length
        i = args.index("--epochs")
        args = args[:i] + args[i + 2 :]
    tag = f"no-{left_out}" if left_out else "full"
    name = f"{candidate}-{tag}" if left_out else f"{candidate}-synthbench"
    cmd = ["synthscan", "train", *args, "--data", data, "--out", str(runs / f"{candidate}-{tag}"), "--name", name]
    return cmd + (["--exclude-family", left_out, "--epochs", str(lofo_epochs)] if left_out else [])


def model_json(cmd: list[str]) -> Path:
    return Path(cmd[cmd.index("--out") + 1]) / f"{cmd[cmd.index('--name') + 1]}.json"


def score(model: Path, paths: list[str]) -> tuple[np.ndarray, float]:
    scanner = Scanner(model)
    p = np.array([r.p_fake if r.ok else np.nan for r in scanner.scan_paths(paths)])
    return p, scanner.decision.threshold


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/synthbench/manifest.csv")
    ap.add_argument("--runs", type=Path, default=Path("runs"))
    ap.add_argument("--detectors", nargs="+", default=list(CANDIDATES))
    ap.add_argument("--out", type=Path, default=Path("docs/leave-family-out"))
    args = ap.parse_args()

    samples = read_manifest(args.data, track="256")
    val = [s for s in samples if s.split == "val"]
    val_reals = [s for s in val if s.label == "real"]
    rows = []
    for detector in args.detectors:
        for left_out in (None, *FAMILIES):
            cmd = train_command(detector, args.data, args.runs, left_out)
            if not model_json(cmd).exists():
                print("+", shlex.join(cmd), flush=True)
                subprocess.run(cmd, check=True)
            if left_out is None:
                test = val
            else:
                test = [s for s in samples if s.family == left_out] + val_reals
            y = np.array([s.y for s in test])
            p, threshold = score(model_json(cmd), [s.path for s in test])
            ok = ~np.isnan(p)
            m = binary_metrics(y[ok], p[ok], threshold)
            rows.append({"detector": detector, "trained_without": left_out or "—",
                         "tested_on": f"{left_out} fakes + val reals" if left_out else "val split",
                         "n_real": m["n_real"], "n_fake": m["n_fake"], "threshold": threshold,
                         **{k: m[k] for k in ("ap", "roc_auc", "accuracy", "balanced_accuracy", "real_accuracy",
                                              "fake_accuracy", "oracle_balanced_accuracy")},
                         "command": shlex.join(cmd)})
            print(json.dumps(rows[-1]), flush=True)
            write_tables(rows, args.out)  # after every row: a cut-short run still leaves its results


def write_tables(rows: list[dict], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    for r in rows:  # AP of a random scorer is the fake fraction: compare AP against it, or use AUC
        r["chance_ap"] = r["n_fake"] / (r["n_fake"] + r["n_real"])
    cols = ["detector", "trained_without", "tested_on", "n_real", "n_fake", "chance_ap", "ap", "roc_auc", "balanced_accuracy",
            "real_accuracy", "fake_accuracy", "oracle_balanced_accuracy"]
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else ("—" if v is None else str(v))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows]
    header = (f"# Default-model selection: val split and leave-one-family-out\n\nMade by `{shlex.join(sys.argv)}`. "
              "Accuracies at each model's own calibrated threshold (chosen on its own val split, which "
              "excludes the left-out family). Training commands: see the JSON file beside this one.\n\n")
    out.with_suffix(".md").write_text(header + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""`synthscan fit ...`: fit the package data that explanations read, offline, one command each."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer
from rich.console import Console

from synthscan.cli import clip_thresholds, fingerprints
from synthscan.cli.main import app
from synthscan.result import ExitCode

fit_app = typer.Typer(help="Fit the bundled data of explanations offline (each file records its command).",
                      no_args_is_help=True)
app.add_typer(fit_app, name="fit", rich_help_panel="Calibration")
# The same commands as `synthscan clip-thresholds` and `synthscan fingerprints`, grouped here.
fit_app.command("clip-thresholds")(clip_thresholds.clip_thresholds)
fit_app.command("fingerprints")(fingerprints.fingerprints)


def _command(name: str, *args) -> str:
    """The command line that reproduces this fit, recorded in the file it writes."""
    return shlex.join(["synthscan", "fit", name, *map(str, args)])


@fit_app.command("family")
def family(
    data: Path = typer.Argument(..., help="Dataset with generator families (synthbench manifest.csv)."),
    track: str = typer.Option("256", help="Manifest track."),
    out: Path = typer.Option(None, "--out", "-o", help="Model JSON to write (default: the bundled family_model.json)."),
) -> None:
    """Train the generator-family model on the train split's fakes; print its accuracy per family."""
    import json

    from synthscan.data.datasets import DatasetError
    from synthscan.fit.family import BUNDLED, fit_family

    err = Console(stderr=True)
    try:
        with err.status("computing features"):
            model = fit_family(data, track=track, out=out or BUNDLED,
                               command=_command("family", data, "--track", track, *(("--out", out) if out else ())))
    except DatasetError as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(ExitCode.USAGE) from None
    for split in ("train", "val"):
        print(f"{split}: " + json.dumps(model.training[split]))
    err.print(f"wrote {out or BUNDLED}")


@fit_app.command("artifact-thresholds")
def artifact_thresholds(
    data: Path = typer.Argument(..., help="Labelled dataset with a train split (synthbench manifest.csv)."),
    per_label: int = typer.Option(150, help="Real and fake images sampled from the train split."),
    track: str = typer.Option("256", help="Manifest track."),
    out: Path = typer.Option(None, "--out", "-o", help="Thresholds JSON to write (default: the bundled one)."),
) -> None:
    """Each measured artifact's onset (reals' p90) and full score (reals' p99); prints reals' and fakes' percentiles."""
    from synthscan.data.datasets import DatasetError
    from synthscan.fit.artifact_thresholds import BUNDLED, fit_thresholds

    err = Console(stderr=True)
    try:
        with err.status("measuring") as status:
            command = _command("artifact-thresholds", data, "--per-label", per_label, "--track", track,
                               *(("--out", out) if out else ()))
            content = fit_thresholds(data, per_label=per_label, track=track, out=out or BUNDLED, command=command,
                                     progress=lambda i: status.update(f"measuring: {i}"))
    except DatasetError as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(ExitCode.USAGE) from None
    for label, rows in content["percentiles"].items():
        print(f"{label} (n<={per_label}): measure  p50 p90 p99")
        for artifact_id, p in rows.items():
            print(f"  {artifact_id:34s} {p['p50']:.3f} {p['p90']:.3f} {p['p99']:.3f}")
    err.print(f"wrote {out or BUNDLED}")

"""`synthscan eval`: per-generator metrics of a model on a labelled dataset."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from synthscan.cli.main import app
from synthscan.result import ExitCode


@app.command("eval")
def evaluate(
    dataset: Path = typer.Argument(..., help="A synthbench manifest CSV, or a folder in the real/+fake/<generator>/, CIFAKE, GenImage or ForenSynths layout (detected)."),
    model: str = typer.Option("synthscan-default", "--model", "-m", help="Bundled model name or path to a model .json."),
    split: str = typer.Option(None, help="Manifest split to evaluate (e.g. val)."),
    track: str = typer.Option(None, help="Manifest track (default: the first track listed in the manifest)."),
    threshold: float = typer.Option(None, help="Override the model's threshold."),
    batch_size: int = typer.Option(32),
    workers: int = typer.Option(2),
    json_out: Path = typer.Option(None, "--json", help="Write the full report as JSON."),
    markdown_out: Path = typer.Option(None, "--markdown", help="Write the tables as Markdown."),
    perturb: list[str] = typer.Option([], help="Sweep a perturbation, e.g. jpeg:95,75 webp:60 resize:0.5 blur:1 crop:0.5 noise:2 chain:social chain:screenshot (repeatable)."),
    compare: list[str] = typer.Option([], help="With --perturb: also sweep this model (repeatable); plots get a line per model."),
    per_generator: bool = typer.Option(False, help="With --perturb: also fake accuracy per generator."),
    seed: int = typer.Option(0, help="With --perturb or --attack: seed of random perturbations (crop position, noise) and PGD starts."),
    attack: list[str] = typer.Option([], help="Adversarial evaluation instead: e.g. pgd:eps=2/255,steps=5 or fgsm:eps=4/255 or pgd:norm=l2,eps=0.5 (repeatable) crafted on --model (differentiable), also scored on each --compare model (transfer)."),
    reliability: Path = typer.Option(None, help="Write a reliability diagram (PNG) with the ECE; linked from --markdown."),
    sweep_report: Path = typer.Option(None, "--report", help="With --perturb: write the sweep as Markdown (.md, plots beside it) or HTML (.html)."),
) -> None:
    """Score every image of DATASET and report accuracy, AP and AUC per generator, family and overall."""
    from synthscan.data.datasets import DatasetError, read_dataset
    from synthscan.evaluate.report import build_report, print_rich_table, to_json, to_markdown
    from synthscan.scanning import Scanner

    err = Console(stderr=True)
    try:
        if track is None and dataset.suffix.lower() == ".csv":
            track = _first_track(dataset)
            if track:
                err.print(f"note: evaluating track {track!r} (choose another with --track)")
        samples = read_dataset(dataset, split=split, track=track)
        scanner = Scanner(model, threshold=threshold, batch_size=batch_size, workers=workers)
        if attack:
            from synthscan.cli.sweep import attack_command

            return attack_command(scanner, compare, samples, attack, seed=seed, json_out=json_out, err=err)
        if perturb:
            from synthscan.cli.sweep import sweep_command

            return sweep_command(scanner, compare, samples, perturb, dataset=dataset, split=split, seed=seed,
                                 per_generator=per_generator, report=sweep_report, json_out=json_out, err=err)
    except (DatasetError, FileNotFoundError, KeyError, ValueError) as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(ExitCode.USAGE) from None

    records = []
    with err.status(f"scanning {len(samples)} images"):
        for sample, result in zip(samples, scanner.scan_paths(s.path for s in samples)):
            records.append({"label": sample.label, "generator": sample.generator, "family": sample.family,
                            "p_fake": result.p_fake})
    report = build_report(records, scanner.decision.threshold, model=scanner.model.name,
                          model_version=scanner.model.version, dataset=str(dataset), split=split or "all")
    print_rich_table(report, Console())
    if json_out:
        json_out.write_text(to_json(report))
    if reliability:
        from synthscan.evaluate.calibration import plot_reliability

        ys = [int(r["label"] == "fake") for r in records if r["p_fake"] is not None]
        plot_reliability({report.model: (ys, [r["p_fake"] for r in records if r["p_fake"] is not None])}, reliability)
    if markdown_out:
        import os

        rel = Path(os.path.relpath(reliability.resolve(), markdown_out.resolve().parent)).as_posix() if reliability else ""
        link = f"\n![reliability]({rel})\n" if reliability else ""
        markdown_out.write_text(to_markdown(report) + link)
    if report.errors:
        err.print(f"{report.errors} image(s) could not be read and are left out of the metrics")
        raise typer.Exit(ExitCode.SOME_FAILED)


def _first_track(manifest: Path) -> str | None:
    import csv

    with manifest.open(newline="") as f:
        row = next(csv.DictReader(f), None)
    return (row or {}).get("track") or None

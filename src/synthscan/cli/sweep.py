"""`synthscan eval DATA --perturb ...` and `--attack ...`: sweeps and attacks behind the eval command."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from synthscan.result import ExitCode


def sweep_command(scanner, compare: list[str], samples, specs: list[str], *, dataset: Path, split: str | None,
                  seed: int, per_generator: bool, report: Path | None, json_out: Path | None, err: Console) -> None:
    """Parse the specs, load the compared models, sweep, print and write. ValueError/KeyError/
    FileNotFoundError raised before the sweep starts are usage errors for the caller."""
    from synthscan.evaluate.perturb import parse_spec
    from synthscan.evaluate.sweep import run_sweep
    from synthscan.evaluate.sweep_report import print_rich, write_report
    from synthscan.output import write_text_atomic
    from synthscan.scanning import Scanner

    perturbations = [p for spec in specs for p in parse_spec(spec)]
    if report and report.suffix.lower() not in (".md", ".html", ".htm"):
        raise ValueError("--report must end in .md or .html")
    if report:
        try:
            import matplotlib  # noqa: F401 - fail before the sweep, not after it
        except ImportError:
            raise ValueError("--report plots need matplotlib: pip install 'synthscan[robustness]'") from None
    scanners = [scanner] + [Scanner(m, batch_size=scanner.batch_size, workers=scanner.workers) for m in compare]
    progress = Progress(TextColumn("sweeping"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=err, disable=not err.is_terminal, transient=True)
    with progress:
        task = progress.add_task("sweep", total=len(samples))
        sweep = run_sweep(scanners, samples, perturbations, seed=seed, per_generator=per_generator,
                          dataset=str(dataset), split=split or "all", progress=lambda k: progress.advance(task, k))
    print_rich(sweep, Console())
    if json_out:
        write_text_atomic(json_out, sweep.model_dump_json(indent=2))
    if report:
        for path in write_report(sweep, report):
            err.print(f"wrote {path}")
    if sweep.errors:
        err.print(f"{sweep.errors} image(s) could not be read and are left out of the metrics")
        raise typer.Exit(ExitCode.SOME_FAILED)


def attack_command(scanner, compare: list[str], samples, specs: list[str], *, seed: int, json_out: Path | None,
                   err: Console) -> None:
    """Attack success rates of each spec, white-box on `scanner`'s model, transfer on `compare`."""
    import json

    from rich.table import Table

    from synthscan.evaluate.adversarial import parse_attack
    from synthscan.evaluate.attack_eval import run_attacks
    from synthscan.output import write_text_atomic
    from synthscan.scanning import Scanner

    attacks = [parse_attack(s) for s in specs]
    targets = [Scanner(m, batch_size=scanner.batch_size, workers=scanner.workers) for m in compare]
    with err.status(f"attacking {len(samples)} images"):
        rows, errors = run_attacks(scanner, targets, samples, attacks, seed=seed)
    table = Table(title=f"Attacks crafted on {scanner.model.name} (its first input tile, saved as 8-bit)")
    for h in ("attack", "scored by", "kind", "fakes evaded", "reals accused", "AP clean", "AP attacked"):
        table.add_column(h, justify="left" if h in ("attack", "scored by", "kind") else "right")
    fmt = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
    for r in rows:
        table.add_row(r.attack, r.target, r.kind, fmt(r.success_fake), fmt(r.success_real), fmt(r.ap_clean),
                      fmt(r.ap_attacked))
    Console().print(table)
    if json_out:
        write_text_atomic(json_out, json.dumps([r.model_dump() for r in rows], indent=2))
    if errors:
        err.print(f"{errors} image(s) could not be read and are left out")
        raise typer.Exit(ExitCode.SOME_FAILED)

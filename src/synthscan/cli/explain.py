"""`synthscan explain`: the verdict of each image with the evidence behind it."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from synthscan.cli.main import app
from synthscan.cli.scan import (
    CLIP_OPTION,
    CLIP_THRESHOLDS_OPTION,
    NARRATOR_OPTION,
    REPORT_OPTION,
    VERDICT_STYLE,
    explain_options,
    write_html_report,
)
from synthscan.explain.attribution import METHODS, TARGETS
from synthscan.explain.schema import Explanation
from synthscan.output import result_record
from synthscan.result import ExitCode, ScanResult


def print_explanations(results: list[ScanResult], console: Console) -> None:
    """One table per image: verdict, regions, artifacts and maps, then the narrative."""
    for r in results:
        if not r.ok:
            console.print(f"[bold]{escape(r.path)}[/]: [bold magenta]error[/] {r.error.code}: {escape(r.error.message)}")
            continue
        e = r.explanation or Explanation()
        console.print(f"[bold]{escape(r.path)}[/]: [{VERDICT_STYLE[r.verdict]}]{r.verdict}[/] p_fake {r.p_fake:.3f}")
        table = Table(show_header=True, box=None, pad_edge=False)
        for col in ("evidence", "what", "score", "where"):
            table.add_column(col, overflow="fold")
        for region in e.regions:
            table.add_row("region", region.source, f"{region.score:.2f}", ",".join(map(str, region.box)))
        for a in e.artifacts:
            where = ",".join(map(str, a.box or ()))
            if a.extent == "image":  # a property of the whole image; the box is where it peaks
                where = f"whole image, peak {where}" if where else "whole image"
            table.add_row(a.evidence, escape(a.name), f"{a.score:.2f}", where)
        for m in e.maps:
            table.add_row("map", escape(m.title), "", escape(m.path or "(embedded)"))
        console.print(table)
        if e.narrative:
            console.print(escape(e.narrative.summary), soft_wrap=True)
        for warning in e.warnings + [w.message for w in r.warnings]:
            console.print(f"[yellow]note:[/] {escape(warning)}")
        console.print()


@app.command()
def explain(
    paths: list[str] = typer.Argument(..., help="Image files or folders."),
    model: str = typer.Option("synthscan-default", "--model", "-m", help="Bundled model name or path to a model .json."),
    methods: list[str] = typer.Option(None, "--method", help="Attribution method (repeatable): "
                                      f"{', '.join(METHODS)}. Default: the model's own (gradcam, or tile-scores "
                                      "for detectors without gradients)."),
    target: str = typer.Option("fake", help="Explain the 'fake' or the 'real' output."),
    maps_dir: Path = typer.Option(None, "--maps-dir", help="Write the maps as PNG files here."),
    embed_maps: bool = typer.Option(False, "--embed-maps", help="Embed the maps in the output as base64 PNG."),
    fmt: str = typer.Option("table", "--format", "-f", help="table | json"),
    out: Path = typer.Option(None, "--out", "-o", help="Write the JSON results to this file."),
    narrator: str = NARRATOR_OPTION,
    clip: str = CLIP_OPTION,
    clip_thresholds: Path = CLIP_THRESHOLDS_OPTION,
    report: Path = REPORT_OPTION,
) -> None:
    """Explain images: attribution maps, top regions, measured evidence and a plain narrative.

    Exit code 0: every file explained; 1: some files failed (listed with a reason code); 2: usage error.
    """
    from synthscan.io import iter_image_paths
    from synthscan.scanning import Scanner

    err = Console(stderr=True)
    if fmt not in ("table", "json"):
        raise typer.BadParameter("--format must be table or json")
    if unknown := [m for m in methods or [] if m not in METHODS]:
        raise typer.BadParameter(f"unknown --method {', '.join(unknown)}; known: {', '.join(METHODS)}")
    if target not in TARGETS:
        raise typer.BadParameter("--target must be fake or real")
    if maps_dir and embed_maps:
        raise typer.BadParameter("choose --maps-dir or --embed-maps, not both")
    todo = list(iter_image_paths(paths))
    if not todo:
        err.print("error: no images given")
        raise typer.Exit(ExitCode.USAGE)
    options = explain_options(maps_dir=maps_dir, embed=embed_maps or report is not None, narrator=narrator, clip=clip,
                              clip_thresholds=clip_thresholds, methods=tuple(methods) if methods else None, target=target)
    try:
        scanner = Scanner(model, explain=options)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(ExitCode.USAGE) from None

    results = list(scanner.scan_paths(todo))
    failed = sum(not r.ok or r.explanation is None for r in results)  # explain-failed counts too
    if out or fmt == "json":
        text = json.dumps([result_record(r) for r in results], indent=2)
        if out:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text + "\n")
            err.print(f"wrote {out}")
        else:
            print(text)
    if fmt == "table":
        print_explanations(results, Console())
    if report:
        write_html_report(results, report, scanner, maps_dir, err)
    if failed:
        err.print(f"{failed} of {len(todo)} file(s) could not be explained")
    raise typer.Exit(ExitCode.SOME_FAILED if failed else ExitCode.OK)

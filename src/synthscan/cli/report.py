"""`synthscan report`: an HTML report from scan results saved as JSON or JSONL."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.console import Console

from synthscan.cli.main import app
from synthscan.result import ExitCode, ScanResult


def read_results(source: str) -> list[ScanResult]:
    """Scan results from a `.json` file (a list), a JSONL file, or - for stdin.

    Raises OSError when the file cannot be read and ValueError naming the line or entry that is
    not a scan result.
    """
    if Path(source).is_dir() or "://" in source:  # the Parquet shards of `scan --engine ray`
        from synthscan.scale.shards import read_results as read_shards

        return list(read_shards(source))
    if source.lower().endswith(".csv"):
        raise ValueError("CSV results hold no explanations; save the scan with --format json or jsonl")
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            records = list(enumerate(json.loads(text), start=1))
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc}") from None
        where = "entry"
    else:
        records, where = [], "line"
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    records.append((number, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"line {number} is not valid JSON: {exc.msg}") from None
    results = []
    for number, record in records:
        try:
            results.append(ScanResult.model_validate(record))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "the record"
            raise ValueError(f"{where} {number} is not a scan result ({field}: {first['msg']})") from None
    return results


@app.command()
def report(
    results: str = typer.Argument(..., help="Results saved by `synthscan scan --out X.jsonl` (or .json), an OUT_DIR of "
                                "`scan --engine ray`, or - for stdin."),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="The HTML file to write (atomically)."),
    title: str = typer.Option(None, help="Page title (default: synthscan report)."),
    model: str = typer.Option(None, "--model", "-m",
                              help="Model whose uncertain band to draw (bundled name or .json); default: "
                                   "the bundled model named in the results, if any."),
) -> None:
    """Render one self-contained HTML page from saved scan results.

    Pictures are read from the scanned files' paths and embedded; maps saved as files are read
    relative to the results file. Exit code 0: written; 2: the results could not be read.
    """
    from synthscan.explain.report_html import write_report

    err = Console(stderr=True)
    try:
        scans = read_results(results)
        decision = _decision(model) if model else None
    except (OSError, ValueError) as exc:
        err.print(f"error: {exc}", highlight=False)
        raise typer.Exit(ExitCode.USAGE) from None
    maps_dir = Path(".") if results == "-" else Path(results).parent
    path = write_report(scans, out, title=title, decision=decision, maps_dir=maps_dir)
    err.print(f"wrote {path} ({len(scans)} result{'' if len(scans) == 1 else 's'})", highlight=False)


def _decision(model: str):
    """The decision rule saved with a model, read from its .json alone (no weights loaded)."""
    from synthscan.detectors.base import ModelInfo
    from synthscan.detectors.registry import resolve_model_path

    return ModelInfo.model_validate_json(resolve_model_path(model).read_text()).decision

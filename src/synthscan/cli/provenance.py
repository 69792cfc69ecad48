"""`synthscan provenance`: what files say about their own origin, without loading a detector."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from synthscan.cli.main import app
from synthscan.result import ExitCode

STATUS_STYLE = {"present": "bold", "absent": "dim", "invalid": "magenta", "unchecked": "yellow"}
CLAIM_STYLE = {"generated": "red", "capture": "green", "edited": "yellow"}
SHOW_PROMPTS_OPTION = typer.Option(False, "--show-prompts", help="Include prompt text from embedded generation parameters.")
TRUST_OPTION = typer.Option(None, "--c2pa-trust", help="PEM file of trusted C2PA signer roots (else every signer is "
                            "reported as untrusted).")


def records(paths: list[str], show_prompts: bool, trust: Path | None) -> list[dict]:
    from synthscan.io import ImageLoadError
    from synthscan.provenance import fuse, read_file

    out = []
    for path in paths:
        try:
            provenance = read_file(path, show_prompts=show_prompts, trust_anchors=str(trust) if trust else None)
        except ImageLoadError as exc:
            out.append({"path": path, "status": "error", "error": exc.notice().model_dump()})
            continue
        # No pixel verdict here: the fusion says what the file's own signals decide on their own.
        provenance.fusion = fuse(provenance, None, None)
        out.append({"path": path, "status": "ok"} | provenance.model_dump(mode="json"))
    return out


def print_records(rows: list[dict], console: Console) -> None:
    for row in rows:
        if row["status"] == "error":
            console.print(f"[bold]{escape(row['path'])}[/]: [magenta]error[/] {escape(row['error']['message'])}")
            continue
        fusion = row["fusion"]
        decided = ("no signal decides: judge the pixels (synthscan scan)" if fusion["source"] == "pixels"
                   else f"{fusion['verdict']} by {fusion['source']}: {fusion['reason']}")
        table = Table(title=f"{row['path']} — {decided}", title_justify="left", show_lines=False)
        for col in ("signal", "status", "claims", "reason"):
            table.add_column(col, overflow="fold", ratio=4 if col == "reason" else 1)
        for name, signal in row["signals"].items():
            style = CLAIM_STYLE.get(signal["claims"]) if signal["status"] == "present" else None
            table.add_row(name, f"[{STATUS_STYLE[signal['status']]}]{signal['status']}[/]",
                          f"[{style}]{signal['claims']}[/]" if style else "", escape(signal["reason"]))
        for hint in row["hints"]:
            table.add_row("  hint", f"{hint['weight']:+.1f}", "", escape(hint["reason"]))
        console.print(table)


@app.command()
def provenance(
    paths: list[str] = typer.Argument(..., help="Image files or folders."),
    fmt: str = typer.Option("table", "--format", "-f", help="table | json"),
    show_prompts: bool = SHOW_PROMPTS_OPTION,
    c2pa_trust: Path = TRUST_OPTION,
) -> None:
    """Print each file's provenance signals (C2PA, EXIF/XMP/IPTC, generation parameters,
    watermarks, hints) and what they decide on their own. No detector is loaded.

    Exit code 0: every file read; 1: some files could not be read; 2: usage error.
    """
    if fmt not in ("table", "json"):
        raise typer.BadParameter("--format must be table or json")
    if c2pa_trust is not None and not c2pa_trust.is_file():
        raise typer.BadParameter(f"--c2pa-trust: no such file {c2pa_trust}")
    from synthscan.io import iter_image_paths

    rows = records(list(iter_image_paths(paths)), show_prompts, c2pa_trust)
    if fmt == "json":
        print(json.dumps(rows, indent=2))
    else:
        print_records(rows, Console())
    raise typer.Exit(ExitCode.SOME_FAILED if any(r["status"] == "error" for r in rows) else ExitCode.OK)

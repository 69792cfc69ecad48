"""`synthscan export`: a trained model as ONNX, for workers that score with onnxruntime."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from synthscan.cli.main import app
from synthscan.result import ExitCode


@app.command()
def export(
    model: str = typer.Argument(..., help="Bundled model name or path to a model .json."),
    fmt: str = typer.Option("onnx", "--format", "-f", help="Export format (onnx)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write <name>.onnx and <name>.json into."),
) -> None:
    """Write MODEL as ONNX plus its calibration and decision; scan it with `--runtime onnx --model OUT`.

    Exit code 0: written; 2: unknown model or format, or onnx is not installed.
    """
    err = Console(stderr=True)
    if fmt != "onnx":
        raise typer.BadParameter("--format must be onnx")
    try:
        import onnx  # noqa: F401
    except ImportError:
        err.print("error: ONNX export needs the onnx extra: pip install 'synthscan[onnx]'", markup=False)
        raise typer.Exit(ExitCode.USAGE) from None
    from synthscan.runtime.onnx_export import export_onnx

    try:
        json_path = export_onnx(model, out)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(ExitCode.USAGE) from None
    err.print(f"wrote {json_path.with_suffix('.onnx')} and {json_path}", highlight=False)

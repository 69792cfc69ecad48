"""`synthscan scan`: verdicts for files, folders, lists and manifests."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from synthscan.cli.main import app
from synthscan.cli.provenance import SHOW_PROMPTS_OPTION, TRUST_OPTION
from synthscan.output import CSV_FIELDS, FORMATS, ResultWriter, format_from_suffix, result_record
from synthscan.result import ExitCode, Notice, ScanResult

VERDICT_STYLE = {"ai-generated": "bold red", "real": "green", "uncertain": "yellow"}
# Paths listed before scanning starts, so that the progress bar has a total. Beyond this many the
# rest streams in while scanning (no total, no ETA): millions of paths never sit in memory at once.
COUNTED_PATHS = 100_000


def print_table(results: list[ScanResult], console: Console) -> None:
    table = Table(show_lines=False)
    table.add_column("path", overflow="fold", ratio=3)
    for col in ("verdict", "source", "p_fake", "size", "tiles"):
        table.add_column(col, justify="right" if col in {"p_fake", "tiles"} else "left", no_wrap=True)
    table.add_column("note", overflow="fold", ratio=2)
    for r in results:
        if r.ok:
            note = ", ".join(w.code for w in r.warnings)
            table.add_row(escape(r.path), f"[{VERDICT_STYLE[r.verdict]}]{r.verdict}[/]", r.verdict_source or "", f"{r.p_fake:.3f}",
                          f"{r.width}x{r.height}", str(r.tiles), note)
        elif r.status == "skipped":
            table.add_row(escape(r.path), "[dim]skipped[/]", "", "", "", r.error.code)
        else:
            table.add_row(escape(r.path), "[bold magenta]error[/]", "", "", "", "", escape(f"{r.error.code}: {r.error.message}"))
    console.print(table)
    if results and results[0].model:
        console.print(f"model {results[0].model} {results[0].model_version}; threshold "
                      f"{next((r.threshold for r in results if r.threshold is not None), '—')}")


# Explanation options shared by `scan --explain` and `explain`.
NARRATOR_OPTION = typer.Option("template", help="Who writes the explanation's narrative: template (offline), "
                               "openai:URL#MODEL (Ollama, vLLM, LM Studio) or hf:MODEL_ID (local transformers).")
CLIP_OPTION = typer.Option(None, help="A CLIP/SigLIP model id or folder that scores semantic artifacts.")
CLIP_THRESHOLDS_OPTION = typer.Option(None, help="With --clip: per-artifact thresholds JSON (calibrate_thresholds).")
REPORT_OPTION = typer.Option(None, "--report", help="Also write a self-contained HTML report of the results.")


@app.command()
def scan(
    paths: list[str] = typer.Argument(None, help="Files, folders, manifest CSVs, or - to read paths from stdin."),
    model: str = typer.Option("synthscan-default", "--model", "-m", help="Bundled model name or path to a model .json."),
    fmt: str = typer.Option(None, "--format", "-f", help="table | json | jsonl | csv (default: from --out, else table)."),
    out: Path = typer.Option(None, "--out", "-o", help="Write results to this file (atomically)."),
    threshold: float = typer.Option(None, help="Override the model's decision threshold (0..1)."),
    batch_size: int = typer.Option(32, help="Tiles per inference batch."),
    workers: int = typer.Option(2, help="Threads decoding images."),
    list_file: Path = typer.Option(None, "--list", help="A file with one path per line."),
    include: list[str] = typer.Option([], help="Glob of files to keep when walking folders (repeatable)."),
    exclude: list[str] = typer.Option([], help="Glob of files to skip when walking folders (repeatable)."),
    sniff: bool = typer.Option(False, "--sniff", help="In folders, also scan files with no or an unknown extension "
                               "whose content is an image (hash-named downloads, .bin)."),
    skipped: bool = typer.Option(False, "--skipped", help="Add a record with status 'skipped' for each file a folder "
                                 "scan passed over for its extension (JSON, JSONL, CSV, table)."),
    resume: bool = typer.Option(False, help="Skip files already in --out and keep their results."),
    max_pixels: int = typer.Option(100_000_000, help="Refuse images with more pixels (decompression bombs)."),
    max_bytes: int = typer.Option(200 * 1024 * 1024, help="Refuse files larger than this."),
    explain: bool = typer.Option(False, "--explain", help="Attach an explanation (heatmap regions, evidence, narrative)."),
    maps_dir: Path = typer.Option(None, "--maps-dir", help="With --explain: write the explanation maps as PNG files here."),
    narrator: str = NARRATOR_OPTION,
    clip: str = CLIP_OPTION,
    clip_thresholds: Path = CLIP_THRESHOLDS_OPTION,
    report: Path = REPORT_OPTION,
    no_metadata: bool = typer.Option(False, "--no-metadata", help="Pixel-only verdict: do not read provenance "
                                     "(C2PA, EXIF/XMP/IPTC, generation parameters, watermarks)."),
    show_prompts: bool = SHOW_PROMPTS_OPTION,
    c2pa_trust: Path = TRUST_OPTION,
    stability: bool = typer.Option(False, "--stability", help="Re-score images near the uncertain band after a 0.75x resize and a 5 px crop shift; a verdict either changes becomes uncertain (each re-scored image costs two more passes of the model)."),
    stability_variants: str = typer.Option(None, "--stability-variants", help="With --stability: comma-separated re-encodings instead of those two, from jpeg90, resize0.75, shift5, webp80 (each costs one more scan)."),
    stability_margin: float = typer.Option(None, "--stability-margin", help="With --stability: re-score only images whose P(fake) lies within this many logits outside the uncertain band (default: see `synthscan.stability`; inf: every image not already uncertain)."),
    runtime: str = typer.Option("torch", help="torch, or onnx: score with onnxruntime (--model: a `synthscan export` folder)."),
    engine: str = typer.Option("local", help="local, or ray: scan on a Ray cluster into Parquet shards in --out (a folder)."),
    ray_address: str = typer.Option(None, help="With --engine ray: auto, ray://HOST:10001 (default: start Ray locally)."),
    shard_size: int = typer.Option(256, help="With --engine ray: files per shard (the unit of resume and retry)."),
) -> None:
    """Scan images and print or write one verdict per file.

    Exit code 0: every file scanned; 1: some files failed (listed with a reason code); 2: usage error.
    """
    from synthscan.io import iter_image_paths, read_list_file
    from synthscan.scanning import Scanner
    from synthscan.stability import DEFAULT_MARGIN

    err = Console(stderr=True)
    if engine == "ray":
        from synthscan.scale.cli import scan_on_ray

        if explain or report:
            raise typer.BadParameter("--explain and --report are not available with --engine ray "
                                     "(run `synthscan report OUT_DIR` afterwards)")
        raise typer.Exit(scan_on_ray(paths or [], out, model=model, runtime=runtime, ray_address=ray_address,
                                     list_file=list_file, include=include, exclude=exclude, threshold=threshold,
                                     batch_size=batch_size, max_pixels=max_pixels, max_bytes=max_bytes, err=err,
                                     shard_size=shard_size))
    if engine != "local" or runtime not in {"torch", "onnx"}:
        raise typer.BadParameter("--engine must be local or ray, --runtime torch or onnx")
    fmt = fmt or (format_from_suffix(out) if out else None) or ("jsonl" if out else "table")
    if fmt not in FORMATS:
        raise typer.BadParameter(f"--format must be one of {', '.join(FORMATS)}")
    if out and fmt == "table":
        raise typer.BadParameter("--out needs --format json, jsonl or csv")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise typer.BadParameter("--threshold must be between 0 and 1")
    if no_metadata and (show_prompts or c2pa_trust):
        raise typer.BadParameter("--show-prompts and --c2pa-trust need provenance (drop --no-metadata)")
    if c2pa_trust is not None and not c2pa_trust.is_file():
        raise typer.BadParameter(f"--c2pa-trust: no such file {c2pa_trust}")
    if resume and not out:
        raise typer.BadParameter("--resume needs --out")
    if not explain and (maps_dir or clip or clip_thresholds or narrator != "template"):
        raise typer.BadParameter("--maps-dir, --narrator, --clip and --clip-thresholds need --explain")
    if (stability_variants or stability_margin is not None) and not stability:
        raise typer.BadParameter("--stability-variants and --stability-margin need --stability")
    inputs = list(paths or [])
    passed_over: list[str] = []  # files a folder walk skipped for their extension
    sources = itertools.chain(iter_image_paths(inputs, include=include, exclude=exclude, sniff=sniff,
                                               on_skip=passed_over.append),
                              read_list_file(str(list_file)) if list_file else ())
    head = list(itertools.islice(sources, COUNTED_PATHS))
    if not head and not (skipped and passed_over):
        report_passed_over(passed_over, err, sniffed=sniff)
        err.print("error: no images given (pass files, folders, --list FILE, or - for stdin)")
        raise typer.Exit(ExitCode.USAGE)
    streaming = len(head) == COUNTED_PATHS  # maybe more: the total is unknown
    try:
        options = explain_options(maps_dir=maps_dir, embed=report is not None, narrator=narrator, clip=clip,
                                  clip_thresholds=clip_thresholds)
        provenance = not no_metadata and {"show_prompts": show_prompts,
                                          "trust_anchors": str(c2pa_trust) if c2pa_trust else None}
        if runtime == "onnx":
            if explain:
                raise ValueError("--explain needs the torch runtime (gradients and perturbations of the model)")
            from synthscan.runtime.onnx_model import load_onnx_model

            model = load_onnx_model(model)
        variants = [v.strip() for v in stability_variants.split(",")] if stability_variants else True
        scanner = Scanner(model, threshold=threshold, batch_size=batch_size, workers=workers,
                          max_pixels=max_pixels, max_bytes=max_bytes, explain=explain and options,
                          provenance=provenance, stability=stability and variants,
                          stability_margin=DEFAULT_MARGIN if stability_margin is None else stability_margin)
    except (FileNotFoundError, KeyError, ValueError, ImportError) as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(ExitCode.USAGE) from None

    writer = ResultWriter(out, fmt, resume=resume) if out else None
    done = writer.done if writer else set()
    todo = itertools.chain(head, sources)
    if done:
        todo = (p for p in todo if p not in done)
        if streaming:
            err.print(f"resuming: skipping the {len(done)} file(s) already in {out}")
        else:
            err.print(f"resuming: {sum(p in done for p in head)} file(s) already in {out}")
    total = None if streaming else sum(p not in done for p in head)

    failed, scanned, shown, reported = 0, 0, [], []
    stream_csv = csv_writer(sys.stdout) if fmt == "csv" and not out else None

    def emit(result: ScanResult) -> None:
        if writer:
            writer.write(result)
        elif fmt == "jsonl":
            print(json.dumps(result_record(result)), flush=True)
        elif stream_csv:
            stream_csv.writerow(result.flat())
        else:
            shown.append(result)

    progress = Progress(TextColumn("scanning"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=err, disable=not err.is_terminal or (total is not None and total < 2), transient=True)
    try:
        with progress:
            task = progress.add_task("scan", total=total)
            for result in scanner.scan_paths(todo):
                scanned += 1
                failed += not result.ok
                if report:
                    reported.append(result)
                emit(result)
                progress.advance(task)
            if skipped:  # after the walk: only then is the list complete
                for result in skipped_results(passed_over, done, sniff):
                    emit(result)
    except KeyboardInterrupt:
        if writer:
            writer.__exit__(KeyboardInterrupt)
            err.print(f"interrupted: results so far kept in {writer.partial}; rerun with --resume")
        raise typer.Exit(130) from None
    if writer:
        writer.close()
        err.print(f"wrote {out}")
    elif fmt == "json":
        print(json.dumps([result_record(r) for r in shown], indent=2))
    elif fmt == "table":
        print_table(shown, Console())
    if report:
        write_html_report(reported, report, scanner, maps_dir, err)
    report_passed_over(passed_over, err, listed=skipped, sniffed=sniff)
    if failed:
        err.print(f"{failed} of {scanned} file(s) could not be scanned")
    raise typer.Exit(ExitCode.SOME_FAILED if failed else ExitCode.OK)


def explain_options(*, maps_dir: Path | None, embed: bool, narrator: str = "template", clip: str | None = None,
                    clip_thresholds: Path | None = None, **more) -> dict:
    """`explain_image` options from CLI flags: maps go to files (--maps-dir), are embedded
    (for an HTML report or --embed-maps) or are left out."""
    maps = "dir" if maps_dir else "base64" if embed else "none"
    if clip:  # loaded once, before any image: a model that cannot load is a usage error, not one per file
        from synthscan.explain.clip_zero_shot import load_scorer

        try:
            load_scorer(clip)
        except OSError as exc:
            Console(stderr=True).print(f"error: {exc}", markup=False, highlight=False)
            raise typer.Exit(ExitCode.USAGE) from None
    return dict(maps=maps, maps_dir=maps_dir, narrator=narrator, clip=clip, clip_thresholds=clip_thresholds, **more)


def write_html_report(results: list[ScanResult], path: Path, scanner, maps_dir: Path | None, err: Console) -> None:
    from synthscan.explain.report_html import write_report

    write_report(results, path, decision=scanner.decision, maps_dir=maps_dir)
    err.print(f"wrote {path}")


def skipped_results(paths: list[str], done: set[str], sniffed: bool):
    """A `skipped` record for each file a folder walk passed over (not those already in --out)."""
    from synthscan.io.errors import REASONS, UNKNOWN_EXTENSION

    message = ("A folder scan passed over the file: neither its extension nor its content is an image's."
               if sniffed else REASONS[UNKNOWN_EXTENSION])
    notice = Notice(code=UNKNOWN_EXTENSION, message=message)
    return (ScanResult(path=p, status="skipped", error=notice) for p in paths if p not in done)


def report_passed_over(paths: list[str], err: Console, *, listed: bool = False, sniffed: bool = False,
                       shown: int = 3) -> None:
    """One line on stderr: how many files the folder walk passed over, and a few of them."""
    if not paths:
        return
    names = ", ".join(escape(p) for p in paths[:shown]) + (", ..." if len(paths) > shown else "")
    hint = "" if listed else "; --skipped lists them" + ("" if sniffed else ", --sniff scans those whose content is an image")
    what = "with neither an image extension nor image content" if sniffed else "without an image extension"
    err.print(f"skipped {len(paths)} file(s) {what} ({names}){hint}", highlight=False)


def csv_writer(stream):
    import csv

    writer = csv.DictWriter(stream, fieldnames=CSV_FIELDS)
    writer.writeheader()
    return writer

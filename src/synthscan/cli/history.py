"""`synthscan history`: the scans `synthscan serve` recorded, from its database."""

from __future__ import annotations

import json
from datetime import datetime

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from synthscan.cli.main import app
from synthscan.cli.scan import VERDICT_STYLE
from synthscan.result import ExitCode


@app.command()
def history(
    database: str = typer.Option(None, "--database", envvar="SYNTHSCAN_DATABASE", show_default=False,
                                 help="History database URL (default: the one `synthscan serve` uses)."),
    verdict: str = typer.Option(None, help="Only this verdict: ai-generated, real or uncertain."),
    model: str = typer.Option(None, help="Only this model name."),
    sha256: str = typer.Option(None, help="Only this image (sha256 of its bytes)."),
    since: datetime = typer.Option(None, help="Only scans at or after this time (ISO 8601, UTC)."),
    until: datetime = typer.Option(None, help="Only scans before this time."),
    limit: int = typer.Option(50, min=1, help="How many, newest first."),
    offset: int = typer.Option(0, min=0, help="Skip this many first."),
    fmt: str = typer.Option("table", "--format", "-f", help="table | jsonl (jsonl includes each full result)."),
) -> None:
    """List recorded scans, newest first."""
    from synthscan.serve.history import History
    from synthscan.serve.settings import default_database_url

    if verdict not in (None, "ai-generated", "real", "uncertain"):
        raise typer.BadParameter("--verdict must be ai-generated, real or uncertain")
    if fmt not in ("table", "jsonl"):
        raise typer.BadParameter("--format must be table or jsonl")
    url = database or default_database_url()
    try:
        store = History(url)
        page = store.list(verdict=verdict, model=model, sha256=sha256, since=since, until=until,
                          limit=limit, offset=offset)
    except Exception as exc:  # noqa: BLE001 - a bad URL or an unreachable server: say which
        typer.echo(f"error: cannot read the history at {url}: {exc}", err=True)
        raise typer.Exit(ExitCode.USAGE) from None
    if fmt == "jsonl":
        for record in page.items:
            print(json.dumps({**record.summary(), "result": record.result}))
        return
    table = Table()
    for column in ("id", "time (UTC)", "file", "verdict", "p_fake", "model", "sha256"):
        table.add_column(column, justify="right" if column in {"id", "p_fake"} else "left")
    for r in page.items:
        s = r.summary()
        table.add_row(str(r.id), s["created_at"][:19].replace("T", " "), escape(r.filename),
                      f"[{VERDICT_STYLE.get(r.verdict, '')}]{r.verdict}[/]", f"{r.p_fake:.3f}",
                      escape(f"{r.model} {r.model_version}"), r.sha256[:12])
    console = Console()
    console.print(table)
    console.print(f"{len(page.items)} of {page.total} scan(s) in {store.describe()}")

"""`synthscan serve`: the REST API and web page under uvicorn."""

from __future__ import annotations

import typer

from synthscan.cli.main import app
from synthscan.result import ExitCode


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on. Beyond loopback an API key is required."),
    port: int = typer.Option(8000, help="TCP port."),
    model: str = typer.Option("synthscan-default", "--model", "-m", help="Bundled model name or path to a model .json."),
    api_key: str = typer.Option(None, "--api-key", envvar="SYNTHSCAN_API_KEY", show_default=False,
                                help="Require this key on every /v1 call (header Authorization: Bearer KEY)."),
    database: str = typer.Option(None, "--database", envvar="SYNTHSCAN_DATABASE", show_default=False,
                                 help="History database URL: sqlite:///PATH or postgresql://USER@HOST/DB "
                                      "(default: a SQLite file under ~/.local/share/synthscan)."),
    max_file_mb: float = typer.Option(20, help="Largest accepted image file, in MiB."),
    max_request_mb: float = typer.Option(100, help="Largest request body, in MiB."),
    max_pixels: int = typer.Option(40_000_000, help="Largest image in pixels (checked from the header before decoding)."),
    max_files: int = typer.Option(32, help="Most files per request."),
    max_request_pixels: int = typer.Option(100_000_000, help="Most pixels of all images in a request together."),
    queue_size: int = typer.Option(64, help="Images that may wait for inference; beyond this requests get 429."),
    timeout: float = typer.Option(60, help="Seconds a request may take before it gets 504."),
    store_images: bool = typer.Option(False, "--store-images", help="Also keep uploaded image bytes in the history."),
) -> None:
    """Serve the REST API (/v1, docs at /docs) and the web page (/) with a scan history."""
    from synthscan.serve.app import run
    from synthscan.serve.settings import MIB, Settings

    options = dict(host=host, port=port, model=model, api_key=api_key or None, max_pixels=max_pixels,
                   max_file_bytes=int(max_file_mb * MIB), max_request_bytes=int(max_request_mb * MIB),
                   max_files=max_files, max_request_pixels=max_request_pixels, queue_size=queue_size, timeout_s=timeout, store_images=store_images)
    if database:
        options["database"] = database
    settings = Settings(**options)
    try:
        settings.check_exposure()
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ExitCode.USAGE) from None
    from sqlalchemy import make_url

    from synthscan.serve.history import History

    try:  # a bad URL or an unreachable server: one line here, not a traceback from uvicorn's startup
        History(settings.database).close()
    except Exception as exc:  # noqa: BLE001
        shown = make_url(settings.database).render_as_string(hide_password=True)
        typer.echo(f"error: cannot open the history at {shown}: {exc}", err=True)
        raise typer.Exit(ExitCode.USAGE) from None
    run(settings)

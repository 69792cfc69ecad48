"""The FastAPI app: `create_app(Settings(...))` builds the API, the web page and their state.

Versioned API under /v1 (OpenAPI at /openapi.json and /docs), probes at /healthz (the process
answers) and /readyz (the model is loaded and warm), the web page at /.
"""

from __future__ import annotations

import hmac
import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import datetime
from importlib import resources
from typing import Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool
from swagger_ui_bundle import swagger_ui_path

from synthscan import __version__
from synthscan.serve import errors
from synthscan.serve.errors import ApiError, install_handlers
from synthscan.serve.history import History
from synthscan.serve.limits import BodyLimit
from synthscan.serve.settings import Settings
from synthscan.serve.uploads import SCAN_BODY, scan_uploads
from synthscan.serve.worker import InferenceWorker

log = logging.getLogger("synthscan.serve")
STATIC = resources.files("synthscan.serve") / "static"
# The page and its files load nothing from elsewhere; images are data: or blob: URLs.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
STATIC_TYPES = {"index.html": "text/html", "app.js": "text/javascript", "serve.css": "text/css"}


def create_app(settings: Settings | None = None, *, model=None) -> FastAPI:
    """`model`: an already loaded `CalibratedModel` to serve instead of `settings.model`."""
    settings = settings or Settings()
    worker = InferenceWorker(model or settings.model, queue_size=settings.queue_size,
                             batch_images=settings.batch_images, batch_size=settings.batch_size,
                             threads=settings.inference_threads)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.history = History(settings.database)
        app.state.decoders = ThreadPoolExecutor(settings.decode_threads, thread_name_prefix="synthscan-decode")
        log.info("scan history: %s", app.state.history.describe())
        worker.start()
        try:
            yield
        finally:
            worker.stop()
            app.state.decoders.shutdown(cancel_futures=True)
            app.state.history.close()

    # docs_url=None: FastAPI's /docs loads Swagger UI from a CDN; ours serves the copy installed
    # with the swagger-ui-bundle package, so the API docs work offline too.
    app = FastAPI(title="synthscan", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Detect AI-generated images and explain why.")
    app.state.settings, app.state.worker = settings, worker
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    install_handlers(app)

    def authorized(request: Request) -> None:
        if not settings.api_key:
            return
        given = request.headers.get("x-api-key") or ""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            given = token.strip()
        if not hmac.compare_digest(given.encode(), settings.api_key.encode()):
            raise ApiError(401, errors.UNAUTHORIZED, "missing or wrong API key (header Authorization: Bearer KEY)")

    v1 = [Depends(authorized)]

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="synthscan API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css", swagger_favicon_url="data:,")

    @app.get("/docs-assets/{name}", include_in_schema=False)
    def docs_asset(name: Literal["swagger-ui-bundle.js", "swagger-ui.css"]) -> FileResponse:
        return FileResponse(swagger_ui_path / name)

    @app.get("/healthz", tags=["probes"])
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", tags=["probes"])
    def readyz() -> dict:
        if not worker.ready.is_set():
            raise ApiError(503, errors.NOT_READY, worker.load_error or "the model is still loading")
        model = worker.scanner.model
        return {"status": "ready", "model": model.name, "model_version": model.version, "queued": worker.queued}

    @app.get("/v1/models", dependencies=v1, tags=["scan"])
    def models() -> dict:
        from synthscan.detectors.registry import list_bundled_models

        loaded = None
        if worker.ready.is_set():
            scanner = worker.scanner
            loaded = {"name": scanner.model.name, "version": scanner.model.version,
                      "detector": scanner.model.info.detector, "decision": scanner.decision.model_dump()}
        bundled = [{"name": key, "version": info.version, "detector": info.detector, "purpose": info.purpose}
                   for key, info in list_bundled_models().items()]
        return {"loaded": loaded, "bundled": bundled}

    @app.post("/v1/scan", dependencies=v1, tags=["scan"], openapi_extra=SCAN_BODY)
    async def scan(request: Request, explain: bool = False, rescan: bool = False) -> dict:
        """Scan one or many images (multipart field `files`). Images already scanned with this model
        version are answered from the history (`cached: true`) unless `rescan=true`."""
        return await scan_uploads(request, explain=explain, rescan=rescan)

    @app.get("/v1/scans", dependencies=v1, tags=["history"])
    async def list_scans(
        request: Request,
        verdict: Literal["ai-generated", "real", "uncertain"] | None = None,
        model: str | None = Query(None, max_length=200),
        sha256: str | None = Query(None, pattern="^[0-9a-fA-F]{64}$"),
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = Query(50, ge=1, le=500),
        offset: int = Query(0, ge=0),
    ) -> dict:
        page = await run_in_threadpool(request.app.state.history.list, verdict=verdict, model=model,
                                       sha256=sha256, since=since, until=until, limit=limit, offset=offset)
        return {"total": page.total, "limit": limit, "offset": offset, "items": [r.summary() for r in page.items]}

    @app.get("/v1/scans/{scan_id}", dependencies=v1, tags=["history"])
    async def get_scan(request: Request, scan_id: int) -> dict:
        record = await run_in_threadpool(request.app.state.history.get, scan_id)
        if record is None:
            raise ApiError(404, errors.NOT_FOUND, f"no scan with id {scan_id}")
        return {**record.summary(), "result": record.result}

    @app.get("/v1/scans/{scan_id}/image", dependencies=v1, tags=["history"])
    async def get_image(request: Request, scan_id: int) -> Response:
        """The scanned image's bytes; only kept when the server runs with --store-images."""
        data = await run_in_threadpool(request.app.state.history.image, scan_id)
        if data is None:
            raise ApiError(404, errors.NOT_FOUND, f"no stored image for scan {scan_id} (see --store-images)")
        return Response(data, media_type="application/octet-stream",
                        headers={"Content-Disposition": f'attachment; filename="scan-{scan_id}"', **PAGE_HEADERS})

    @app.get("/", include_in_schema=False)
    def page() -> Response:
        return static_file("index.html")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        return static_file(name)

    return app


def static_file(name: str) -> Response:
    """The page's own files (a fixed list, so no path from the URL ever reaches the file system)
    and the HTML report's stylesheet, shared so that both look the same."""
    if name == "report.css":
        css = (resources.files("synthscan.explain") / "templates" / "report.css").read_text(encoding="utf-8")
        return Response(css, media_type="text/css", headers=PAGE_HEADERS)
    if name not in STATIC_TYPES:
        raise ApiError(404, errors.NOT_FOUND, f"no file {name!r}")
    return FileResponse(str(STATIC / name), media_type=STATIC_TYPES[name], headers=PAGE_HEADERS)


def run(settings: Settings) -> None:
    """Serve under uvicorn until interrupted (what `synthscan serve` calls)."""
    import uvicorn

    settings.check_exposure()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its per-plugin lines drown the rest
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info",
                timeout_graceful_shutdown=10, server_header=False)

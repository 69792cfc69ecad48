"""`POST /v1/scan`: multipart uploads -> decoded images -> history or the inference queue.

Uploads are read from the stream into memory, up to the per-file limit, and decoded with the
CLI's `load_image` (content sniffing, header pixel check) in a thread. Starlette spools large
parts to anonymous temporary files that are deleted when the request ends; no file is ever
created under a name the client chose, and the name is only echoed back, reduced to a safe
base name.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from synthscan.io import ImageLoadError, LoadedImage, load_image
from synthscan.provenance.attach import attach_provenance
from synthscan.output import result_record
from synthscan.result import ScanResult
from synthscan.serve import errors
from synthscan.serve.errors import ApiError
from synthscan.serve.limits import BodyTooLarge
from synthscan.serve.worker import QueueFull

# OpenAPI description of the multipart body (parsed by hand to enforce the limits while streaming).
SCAN_BODY = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object",
            "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}},
            "required": ["files"],
        }}},
    }
}


def safe_name(filename: str | None, index: int) -> str:
    """The base name of a client's file name, printable and short, for display only."""
    base = re.split(r"[\\/]", filename or "")[-1]
    base = re.sub(r"[^\w.\- ]", "_", base).strip(" .")[:200]
    return base or f"upload-{index + 1}"


async def read_uploads(request: Request, settings) -> list[tuple[str, bytes]]:
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise ApiError(415, errors.NOT_MULTIPART, "send the images as multipart/form-data (field name: files)")
    try:
        form = await request.form(max_files=settings.max_files, max_fields=16, max_part_size=64 * 1024)
        uploads = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        files = []
        for i, upload in enumerate(uploads):
            files.append((safe_name(upload.filename, i), await upload.read(settings.max_file_bytes + 1)))
    except BodyTooLarge as exc:
        raise ApiError(413, errors.REQUEST_TOO_LARGE, str(exc)) from None
    except (HTTPException, ValueError) as exc:  # Starlette's and python-multipart's parse errors
        detail = str(getattr(exc, "detail", exc))
        if "Too many files" in detail:
            raise ApiError(413, errors.TOO_MANY_FILES, f"at most {settings.max_files} files per request") from None
        raise ApiError(400, errors.BAD_MULTIPART, f"cannot parse the multipart body: {detail}") from None
    if not files:
        raise ApiError(422, errors.NO_FILES, "no files in the request (multipart field: files)")
    return files


def _decode(name: str, data: bytes, settings) -> LoadedImage | ImageLoadError:
    try:
        return load_image(data, name=name, max_pixels=settings.max_pixels, max_bytes=settings.max_file_bytes)
    except ImageLoadError as exc:
        return exc


async def scan_uploads(request: Request, *, explain: bool, rescan: bool) -> dict[str, Any]:
    state = request.app.state
    settings, worker, history = state.settings, state.worker, state.history
    if not worker.ready.is_set():
        raise ApiError(503, errors.NOT_READY, worker.load_error or "the model is still loading; retry shortly")
    deadline = time.monotonic() + settings.timeout_s
    files = await read_uploads(request, settings)
    loop = asyncio.get_running_loop()
    decoded, pixels = [], 0
    for name, data in files:
        item = await loop.run_in_executor(state.decoders, _decode, name, data, settings)
        pixels += item.width * item.height if isinstance(item, LoadedImage) else 0
        if pixels > settings.max_request_pixels:  # decoded pixels stay in memory until scored
            raise ApiError(413, errors.TOO_MANY_PIXELS, f"the images hold more than {settings.max_request_pixels:,} "
                           "pixels together; send fewer per request")
        decoded.append(item)
    failures = [d for d in decoded if isinstance(d, ImageLoadError)]
    if len(failures) == len(decoded):  # nothing to scan: the request itself failed
        first = failures[0]
        raise ApiError(errors.IMAGE_STATUS.get(first.code, 400), first.code, f"{first.path}: {first.message}",
                       files=[{"filename": f.path, "code": f.code, "message": f.message} for f in failures])

    model = worker.scanner.model
    items: list[dict[str, Any] | None] = [None] * len(decoded)
    todo: list[int] = []
    for i, item in enumerate(decoded):
        if isinstance(item, ImageLoadError):
            failed = ScanResult(path=item.path, status="error", error=item.notice(), model=model.name,
                                model_version=model.version)
            items[i] = {"id": None, "cached": False, "result": result_record(failed)}
            continue
        record = None if rescan else await run_in_threadpool(
            history.find, item.sha256, model.name, model.version, explained=explain)
        if record is not None:
            items[i] = {"id": record.id, "cached": True, "created_at": record.summary()["created_at"],
                        "result": {**record.result, "path": item.path}}
        else:
            todo.append(i)

    if todo:
        try:
            futures = worker.submit([decoded[i] for i in todo], explain)
        except QueueFull as exc:
            raise ApiError(429, errors.QUEUE_FULL, f"the inference queue is full ({exc}); retry shortly") from None
        try:
            results = await asyncio.wait_for(asyncio.gather(*futures), max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            for f in futures:
                f.cancel()
            raise ApiError(504, errors.TIMEOUT, f"no answer within {settings.timeout_s:g} s") from None
        for i, result in zip(todo, results):
            # Fused with what the uploaded file says about itself, as `synthscan scan` does.
            await run_in_threadpool(attach_provenance, result, decoded[i], {"max_bytes": settings.max_file_bytes},
                                    data=files[i][1])
            record = result_record(result)
            image = files[i][1] if settings.store_images else None
            row = await run_in_threadpool(history.add, record, filename=files[i][0], image=image)
            items[i] = {"id": row.id, "cached": False, "created_at": row.created_at.isoformat(), "result": record}
    return {"model": {"name": model.name, "version": model.version}, "items": items}

"""API errors: JSON `{"error": {"code", "message"}}` with the right HTTP status.

Codes for image problems are the CLI's reason codes (`synthscan.io.errors`), so a client can
handle a refused upload the same way it handles a failed file in `synthscan scan` output.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from synthscan.io import errors as reasons

# Reason code of a file that could not be loaded -> the status of a request that only held such files.
IMAGE_STATUS = {
    reasons.TOO_LARGE: 413,
    reasons.DECOMPRESSION_BOMB: 413,
    reasons.NOT_AN_IMAGE: 415,
    reasons.UNSUPPORTED_FORMAT: 415,
    reasons.EMPTY: 400,
    reasons.TRUNCATED: 400,
    reasons.CORRUPT: 400,
    reasons.UNSUPPORTED_MODE: 400,
}

# Codes of the service itself.
UNAUTHORIZED = "unauthorized"  # 401
NOT_FOUND = "not-found"  # 404
REQUEST_TOO_LARGE = "request-too-large"  # 413
TOO_MANY_FILES = "too-many-files"  # 413
TOO_MANY_PIXELS = "too-many-pixels"  # 413
NOT_MULTIPART = "not-multipart"  # 415
BAD_MULTIPART = "bad-multipart"  # 400
BAD_PARAMETERS = "bad-parameters"  # 422
NO_FILES = "no-files"  # 422
QUEUE_FULL = "queue-full"  # 429
NOT_READY = "not-ready"  # 503
TIMEOUT = "timeout"  # 504


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        if self.status in (429, 503):
            headers = {"Retry-After": "1"}
        body = {"error": {"code": self.code, "message": self.message, **self.extra}}
        return JSONResponse(body, status_code=self.status, headers=headers)


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def bad_parameters(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return ApiError(422, BAD_PARAMETERS, problems or "invalid parameters").response()

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:  # logged by the server as well
        return ApiError(500, "internal", f"{type(exc).__name__}: {exc}").response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: NOT_FOUND, 405: "method-not-allowed"}.get(exc.status_code, f"http-{exc.status_code}")
        return ApiError(exc.status_code, code, str(exc.detail)).response()

"""Request-size limit enforced while the body streams in, before anything is parsed or spooled."""

from __future__ import annotations

from synthscan.serve.errors import REQUEST_TOO_LARGE, ApiError


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: 413 at once when Content-Length is over `max_bytes`, and an error from
    `receive` as soon as a body without (or lying about) its length goes past it."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            response = ApiError(413, REQUEST_TOO_LARGE, self.message(declared.decode("latin-1"))).response()
            return await response(scope, receive, send)
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.message(f"more than {seen:,}"))
            return message

        await self.app(scope, limited_receive, send)

    def message(self, size: str) -> str:
        return f"request body of {size} bytes exceeds the limit of {self.max_bytes:,} bytes"

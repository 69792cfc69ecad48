"""Helpers for the service tests: a started app on a tiny model, and small encoded images."""

from __future__ import annotations

import io
import time

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from synthscan.serve.app import create_app
from synthscan.serve.settings import Settings


def png(h: int = 80, w: int = 96, seed: int = 0, fmt: str = "PNG") -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt)
    return buf.getvalue()


def started_client(tmp_path, model, raise_server_exceptions: bool = True, **settings) -> TestClient:
    """A TestClient whose app has loaded `model`; call `__exit__` to stop it."""
    settings.setdefault("database", f"sqlite:///{tmp_path / 'history.db'}")
    client = TestClient(create_app(Settings(**settings), model=model), raise_server_exceptions=raise_server_exceptions)
    client.__enter__()
    deadline = time.monotonic() + 60
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "model never became ready"
        time.sleep(0.02)
    return client


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height but holds no pixel data (a decompression-bomb probe)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")


class LiveServer:
    """The app under a real uvicorn on 127.0.0.1 and a free port, in a thread."""

    def __init__(self, app) -> None:
        import socket

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))

    def __enter__(self) -> "LiveServer":
        import threading

        import httpx

        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + "/readyz").status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server never became ready"
            time.sleep(0.05)

    def __exit__(self, *_) -> None:
        self.server.should_exit = True
        self.thread.join(30)

"""What `synthscan serve` may accept and how it runs: limits with safe defaults.

Every limit is checked before the expensive step it protects: request bytes while the upload
streams in, file bytes before decoding, pixels from the image header before any pixel is
decoded, queue length before a job is queued.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from pydantic import BaseModel, Field

MIB = 1024 * 1024


def default_database_url() -> str:
    """A SQLite file under $XDG_DATA_HOME/synthscan (default ~/.local/share/synthscan)."""
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "synthscan"
    return f"sqlite:///{base / 'history.db'}"


class Settings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    model: str = "synthscan-default"
    api_key: str | None = None  # required on every /v1 call when set
    database: str = Field(default_factory=default_database_url)
    max_file_bytes: int = 20 * MIB
    max_request_bytes: int = 100 * MIB
    max_pixels: int = 40_000_000  # checked from the header, before decoding
    max_files: int = 32  # per request
    max_request_pixels: int = 100_000_000  # all images of a request together (decoded RGB: 3 bytes each)
    queue_size: int = 64  # images waiting for inference; beyond: 429
    batch_images: int = 16  # images scored together, across requests
    batch_size: int = 32  # tiles per forward pass
    decode_threads: int = 2  # images decoded at once: bounds decoder memory (a 40 MP image is ~120 MB)
    inference_threads: int = 1  # each scores whole batches; more only helps on many cores
    timeout_s: float = 60.0  # per request, from upload to answer; beyond: 504
    store_images: bool = False  # keep uploaded bytes in the history (off: only their sha256)

    def check_exposure(self) -> None:
        """Refuse to listen beyond loopback without an API key: the service would be open to anyone."""
        if self.api_key:
            return
        try:
            loopback = ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            loopback = self.host == "localhost"
        if not loopback:
            raise ValueError(
                f"refusing to listen on {self.host} without an API key: anyone who can reach this "
                "address could use the service. Pass --api-key KEY (or set SYNTHSCAN_API_KEY), or "
                "bind to 127.0.0.1."
            )

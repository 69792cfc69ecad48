"""A small Python client for `synthscan serve`.

>>> from synthscan.client import Client                              # doctest: +SKIP
>>> with Client("http://127.0.0.1:8000", api_key=None) as c:          # doctest: +SKIP
...     for item in c.scan(["photo.jpg", "other.png"]):
...         print(item.result.path, item.result.verdict, item.cached)

Results are `synthscan.result.ScanResult` objects, the same as the CLI and `synthscan.scan`
return. A refused request raises `ServiceError` with the service's error code and HTTP status.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from synthscan.result import ScanResult


class ServiceError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


@dataclass
class ScanItem:
    result: ScanResult
    id: int | None  # the history record; None for a file that failed to load
    cached: bool  # answered from the history (same image, same model version)


class Client:
    def __init__(self, url: str = "http://127.0.0.1:8000", *, api_key: str | None = None, timeout: float = 120.0):
        api_key = api_key or os.environ.get("SYNTHSCAN_API_KEY")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=url, headers=headers, timeout=timeout)

    def _json(self, response: httpx.Response) -> Any:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.is_error:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            raise ServiceError(response.status_code, error.get("code", f"http-{response.status_code}"),
                               error.get("message", response.text[:200]))
        return body

    def scan(self, images: list[str | os.PathLike[str] | tuple[str, bytes]], *, explain: bool = False,
             rescan: bool = False) -> list[ScanItem]:
        """Scan files (paths) or in-memory images ((name, bytes) pairs) in one request."""
        files = []
        for image in images:
            name, data = image if isinstance(image, tuple) else (Path(image).name, Path(image).read_bytes())
            files.append(("files", (name, data, "application/octet-stream")))
        params = {"explain": str(explain).lower(), "rescan": str(rescan).lower()}
        body = self._json(self._http.post("/v1/scan", params=params, files=files))
        return [ScanItem(ScanResult.model_validate(i["result"]), i["id"], i["cached"]) for i in body["items"]]

    def scans(self, **filters: Any) -> dict[str, Any]:
        """One page of the history: filters verdict, model, sha256, since, until, limit, offset."""
        params = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in filters.items() if v is not None}
        return self._json(self._http.get("/v1/scans", params=params))

    def scan_record(self, scan_id: int) -> dict[str, Any]:
        return self._json(self._http.get(f"/v1/scans/{scan_id}"))

    def models(self) -> dict[str, Any]:
        return self._json(self._http.get("/v1/models"))

    def ready(self) -> bool:
        return self._http.get("/readyz").status_code == 200

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_) -> None:
        self.close()

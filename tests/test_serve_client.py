"""`synthscan.client` against a live server on 127.0.0.1."""

from __future__ import annotations

import pytest

from synthscan.client import Client, ServiceError
from synthscan.serve.app import create_app
from synthscan.serve.settings import Settings
from serve_helpers import LiveServer, png


def test_client_scans_and_reads_history(tmp_path, tiny_model):
    (tmp_path / "a.png").write_bytes(png(seed=31))
    app = create_app(Settings(database=f"sqlite:///{tmp_path / 'h.db'}", api_key="k"), model=tiny_model)
    with LiveServer(app) as server:
        with pytest.raises(ServiceError) as denied:
            Client(server.url, api_key="wrong").models()
        assert denied.value.status == 401 and denied.value.code == "unauthorized"
        with Client(server.url, api_key="k") as client:
            assert client.ready() and client.models()["loaded"]["name"] == "tiny-npr"
            first, bad = client.scan([tmp_path / "a.png", ("notes.txt", b"just text")])
            assert first.result.ok and not first.cached and first.id is not None
            assert bad.result.error.code == "not-an-image" and bad.id is None
            (again,) = client.scan([("same.png", (tmp_path / "a.png").read_bytes())])
            assert again.cached and again.result.p_fake == first.result.p_fake
            assert client.scans(verdict=first.result.verdict)["total"] == 1
            assert client.scan_record(first.id)["result"]["sha256"] == first.result.sha256
            with pytest.raises(ServiceError) as refused:
                client.scan([("empty.png", b"")])
            assert refused.value.status == 400 and refused.value.code == "empty"

"""Hostile uploads (hypothesis): every answer is a 4xx JSON error and the service stays healthy.

Random bytes, truncated images, huge declared dimensions, archives/HTML/SVG dressed as images,
wrong content types, path-like names, empty and over-limit requests.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serve_helpers import png, png_header, started_client

MAX_FILE = 6000
GOOD = [png(24, 24, seed=s) for s in range(3)] + [png(24, 24, seed=9, fmt="JPEG"), png(24, 24, seed=8, fmt="GIF")]

truncated = st.builds(lambda data, cut: data[: max(1, int(len(data) * cut))], st.sampled_from(GOOD), st.floats(0.05, 0.5))
huge = st.builds(png_header, st.integers(10_000, 2**31 - 1), st.integers(10_000, 2**31 - 1))
gif_huge = st.builds(lambda w, h: b"GIF89a" + w.to_bytes(2, "little") + h.to_bytes(2, "little") + b"\x00\x00\x00;",
                     st.integers(8000, 65535), st.integers(8000, 65535))
disguised = st.sampled_from([
    b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(40),  # zip
    b"<!DOCTYPE html><html><script>alert(1)</script></html>",
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>',
    b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj",
    b"\x1f\x8b\x08\x00" + bytes(20),
    b"GIF89a",  # a header and nothing else
])
over_limit = st.builds(lambda data: b"\x89PNG\r\n\x1a\n" + data, st.binary(min_size=MAX_FILE, max_size=MAX_FILE + 500))
content = st.one_of(st.binary(max_size=2000), truncated, huge, gif_huge, disguised, over_limit, st.just(b""))
names = st.one_of(
    st.sampled_from(["../../etc/passwd", "..\\..\\boot.ini", "/abs/x.png", "C:\\x\\y.jpg", "a/b/../c.png", "", ".", "...",
                     "x" * 400 + ".png", "evil.png\r\nX-Header: 1", "<img src=x onerror=alert(1)>.png"]),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40),
)
ctypes = st.sampled_from(["image/png", "image/jpeg", "text/html", "application/zip", "image/svg+xml",
                          "application/octet-stream", "multipart/mixed"])
upload = st.tuples(names, content, ctypes)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from conftest import TINY_CALIBRATION, TINY_DECISION, _spread_logits, _warm_batchnorm, tiny_npr  # module scope
    import torch

    from synthscan.detectors.base import CalibratedModel, ModelInfo

    torch.manual_seed(0)
    det = tiny_npr()
    _warm_batchnorm(det, 64)
    _spread_logits(det, 64)
    model = CalibratedModel(det, ModelInfo(detector="npr", name="tiny-npr", version="0.0.1",
                                           calibration=TINY_CALIBRATION, decision=TINY_DECISION))
    c = started_client(tmp_path_factory.mktemp("fuzz"), model, max_file_bytes=MAX_FILE, max_request_bytes=40_000,
                       max_files=4, max_pixels=5_000_000)
    yield c
    c.__exit__(None, None, None)


def assert_json_4xx(response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    error = response.json()["error"]
    assert isinstance(error["code"], str) and error["code"] and isinstance(error["message"], str)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(uploads=st.lists(upload, min_size=1, max_size=6))
def test_hostile_uploads(client, uploads):
    files = [("files", (name, data, ctype)) for name, data, ctype in uploads]
    assert_json_4xx(client.post("/v1/scan", files=files))
    assert client.get("/healthz").status_code == 200


@settings(max_examples=20, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=3000), ctype=st.sampled_from(["multipart/form-data", "multipart/form-data; boundary=x",
                                                             "image/png", "application/json", "text/plain", ""]))
def test_hostile_bodies(client, body, ctype):
    headers = {"content-type": ctype} if ctype else {}
    assert_json_4xx(client.post("/v1/scan", content=body, headers=headers))
    assert client.get("/healthz").status_code == 200


def test_empty_and_oversized_requests(client):
    assert_json_4xx(client.post("/v1/scan"))
    assert_json_4xx(client.post("/v1/scan", files=[]))
    assert_json_4xx(client.post("/v1/scan", content=bytes(50_000), headers={"content-type": "multipart/form-data; boundary=x"}))
    assert client.get("/healthz").status_code == 200

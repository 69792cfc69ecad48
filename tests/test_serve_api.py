"""The REST API: every endpoint and every error code, on a tiny random-weight model."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from synthscan.result import ScanResult
from synthscan.serve.app import create_app
from synthscan.serve.settings import Settings
from serve_helpers import png, png_header, started_client


@pytest.fixture
def client(tmp_path, tiny_model):
    c = started_client(tmp_path, tiny_model)
    yield c
    c.__exit__(None, None, None)


def files(*named: tuple[str, bytes], ctype: str = "image/png"):
    return [("files", (name, data, ctype)) for name, data in named]


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"]
    return body["error"]["code"]


def test_probes_and_models(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["model"] == "tiny-npr"
    models = client.get("/v1/models").json()
    assert models["loaded"]["name"] == "tiny-npr" and models["loaded"]["version"] == "0.0.1"
    assert "synthscan-default" in {m["name"] for m in models["bundled"]}
    schema = client.get("/openapi.json").json()
    assert {"/v1/scan", "/v1/scans", "/v1/scans/{scan_id}", "/v1/models"} <= set(schema["paths"])


def test_api_docs_work_offline(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower() and "http://" not in page.text and "https://" not in page.text
    js = client.get("/docs-assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and "SwaggerUIBundle" in js.text
    assert client.get("/docs-assets/secret.py").status_code == 422  # only the two files are served


def test_scan_history_and_cache(client):
    a, b = png(seed=1), png(70, 130, seed=2, fmt="JPEG")
    r = client.post("/v1/scan", files=files(("a.png", a), ("../../etc/b.jpg", b)))
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    results = [ScanResult.model_validate(i["result"]) for i in items]  # the CLI's schema
    assert [x.path for x in results] == ["a.png", "b.jpg"]  # names reduced to a safe base name
    assert all(x.ok and x.verdict in {"ai-generated", "real", "uncertain"} for x in results)
    assert [i["cached"] for i in items] == [False, False]

    again = client.post("/v1/scan", files=files(("copy.png", a))).json()["items"][0]
    assert again["cached"] and again["id"] == items[0]["id"] and again["result"]["path"] == "copy.png"
    assert again["result"]["p_fake"] == items[0]["result"]["p_fake"]
    fresh = client.post("/v1/scan?rescan=true", files=files(("a.png", a))).json()["items"][0]
    assert not fresh["cached"] and fresh["id"] != items[0]["id"]

    listing = client.get("/v1/scans").json()
    assert listing["total"] == 3 and listing["items"][0]["id"] == fresh["id"]  # newest first
    sha = results[1].sha256
    only_b = client.get(f"/v1/scans?sha256={sha}").json()
    assert only_b["total"] == 1 and only_b["items"][0]["filename"] == "b.jpg"
    verdict = results[0].verdict
    by_verdict = client.get(f"/v1/scans?verdict={verdict}").json()
    assert by_verdict["total"] == sum(x.verdict == verdict for x in results) + 1
    assert client.get("/v1/scans?limit=1&offset=1").json()["items"][0]["id"] == items[1]["id"]
    assert client.get("/v1/scans?since=2999-01-01T00:00:00Z").json()["total"] == 0
    assert client.get("/v1/scans?model=other").json()["total"] == 0
    record = client.get(f"/v1/scans/{items[1]['id']}").json()
    assert record["result"]["sha256"] == sha and record["verdict"] == results[1].verdict
    assert error_of(client.get("/v1/scans/999"), 404) == "not-found"
    assert error_of(client.get(f"/v1/scans/{items[0]['id']}/image"), 404) == "not-found"  # not kept by default


def test_store_images_when_asked(tmp_path, tiny_model):
    c = started_client(tmp_path, tiny_model, store_images=True)
    try:
        data = png(seed=7)
        item = c.post("/v1/scan", files=files(("a.png", data))).json()["items"][0]
        assert c.get(f"/v1/scans/{item['id']}/image").content == data
    finally:
        c.__exit__(None, None, None)


def test_explain_adds_evidence(client):
    r = client.post("/v1/scan?explain=true", files=files(("a.png", png(seed=3))))
    assert r.status_code == 200, r.text
    explanation = r.json()["items"][0]["result"]["explanation"]
    assert explanation["maps"] and explanation["maps"][0]["png_base64"]
    # The stored record keeps the evidence; a plain scan of the same image reuses it.
    again = client.post("/v1/scan", files=files(("a.png", png(seed=3)))).json()["items"][0]
    assert again["cached"] and again["result"]["explanation"]


def test_provenance_read_from_the_upload(client, tmp_path, monkeypatch):
    from provenance_files import picture, webui_png

    # A same-named file in the server's working directory must not be read in place of the upload.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.png").write_bytes(png(seed=3))
    result = client.post("/v1/scan", files=files(("a.png", webui_png(picture(128, 128))))).json()["items"][0]["result"]
    assert result["verdict_source"] == "metadata" and result["verdict"] == "ai-generated"
    assert result["provenance"]["signals"]["generator"]["status"] == "present"
    plain = client.post("/v1/scan", files=files(("b.png", png(seed=4)))).json()["items"][0]["result"]
    assert plain["verdict_source"] == "pixels" and plain["provenance"]["signals"]["generator"]["status"] == "absent"


def test_mixed_batch_keeps_good_files(client):
    r = client.post("/v1/scan", files=files(("ok.png", png(seed=4)), ("bad.png", b"<html>hi</html>")))
    assert r.status_code == 200
    ok, bad = (i["result"] for i in r.json()["items"])
    assert ok["status"] == "ok" and bad == {**bad, "status": "error", "path": "bad.png"}
    assert bad["error"]["code"] == "not-an-image"


def test_image_errors(client):
    whole = png(seed=5)
    assert error_of(client.post("/v1/scan", files=files(("t.png", whole[: len(whole) // 2]))), 400) == "truncated"
    assert error_of(client.post("/v1/scan", files=files(("e.png", b""))), 400) == "empty"
    assert error_of(client.post("/v1/scan", files=files(("x.png", b"PK\x03\x04zipzip"))), 415) == "not-an-image"
    bomb = client.post("/v1/scan", files=files(("bomb.png", png_header(60000, 60000))))
    assert error_of(bomb, 413) == "decompression-bomb"
    assert bomb.json()["error"]["files"][0]["filename"] == "bomb.png"


def test_request_errors(client):
    assert error_of(client.post("/v1/scan", content=png(), headers={"content-type": "image/png"}), 415) == "not-multipart"
    assert error_of(client.post("/v1/scan", data={"note": "x"}, files={"x": ("", b"", "text/plain")}), 422) in {"no-files", "empty"}
    assert error_of(client.post("/v1/scan?explain=maybe", files=files(("a.png", png()))), 422) == "bad-parameters"
    assert error_of(client.get("/v1/scans?limit=0"), 422) == "bad-parameters"
    assert error_of(client.get("/v1/scans?sha256=../../x"), 422) == "bad-parameters"
    assert error_of(client.get("/v1/scans?verdict=fake"), 422) == "bad-parameters"


def test_size_limits(tmp_path, tiny_model):
    c = started_client(tmp_path, tiny_model, max_file_bytes=2000, max_request_bytes=20_000, max_files=2,
                       max_request_pixels=600)
    try:
        big = png(40, 40, seed=6)
        assert len(big) > 2000
        assert error_of(c.post("/v1/scan", files=files(("big.png", big))), 413) == "too-large"
        pair = files(("a.png", png(20, 20, seed=1)), ("b.png", png(20, 20, seed=2)))  # 400 pixels each
        assert error_of(c.post("/v1/scan", files=pair), 413) == "too-many-pixels"
        many = files(*[(f"{i}.png", png(8, 8, seed=i)) for i in range(3)])
        assert error_of(c.post("/v1/scan", files=many), 413) == "too-many-files"
        huge = files(("a.png", b"\x89PNG" + bytes(30_000)))
        assert error_of(c.post("/v1/scan", files=huge), 413) == "request-too-large"

        def chunks():  # no Content-Length: the limit must hold while streaming
            yield b"--x\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.png\"\r\n\r\n"
            for _ in range(30):
                yield bytes(1000)

        streamed = c.post("/v1/scan", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"})
        assert error_of(streamed, 413) == "request-too-large"
        assert c.get("/healthz").status_code == 200
    finally:
        c.__exit__(None, None, None)


def test_api_key(tmp_path, tiny_model):
    c = started_client(tmp_path, tiny_model, api_key="s3cret")
    try:
        assert error_of(c.get("/v1/models"), 401) == "unauthorized"
        assert error_of(c.get("/v1/scans", headers={"authorization": "Bearer wrong"}), 401) == "unauthorized"
        assert error_of(c.post("/v1/scan", files=files(("a.png", png()))), 401) == "unauthorized"
        assert c.get("/v1/models", headers={"authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/v1/scans", headers={"x-api-key": "s3cret"}).status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/").status_code == 200  # page and probes stay open
    finally:
        c.__exit__(None, None, None)


def test_not_ready(tmp_path, tiny_model):
    app = create_app(Settings(database=f"sqlite:///{tmp_path / 'h.db'}"), model=tiny_model)
    c = TestClient(app)  # not entered: the model was never loaded
    app.state.history = None
    assert error_of(c.get("/readyz"), 503) == "not-ready"
    assert error_of(c.post("/v1/scan", files=files(("a.png", png()))), 503) == "not-ready"
    assert c.get("/healthz").status_code == 200


@pytest.fixture
def gated_model(tiny_model):
    """The tiny model, but inference waits for `gate` to be set."""
    gate, busy = threading.Event(), threading.Event()
    logits = tiny_model.logits

    def slow(x):
        busy.set()
        gate.wait(30)
        return logits(x)

    tiny_model.logits = slow
    gate.set()  # open for the warm-up; tests close it
    yield tiny_model, gate, busy
    gate.set()


def test_queue_full_and_timeout(tmp_path, gated_model):
    model, gate, busy = gated_model
    c = started_client(tmp_path, model, queue_size=1, batch_images=1, timeout_s=30)
    answers = []
    try:
        gate.clear()
        busy.clear()
        first = threading.Thread(target=lambda: answers.append(c.post("/v1/scan", files=files(("1.png", png(seed=11)))).status_code))
        first.start()
        assert busy.wait(30)  # the worker holds image 1
        second = threading.Thread(target=lambda: answers.append(c.post("/v1/scan", files=files(("2.png", png(seed=12)))).status_code))
        second.start()
        while c.app.state.worker.queued < 1:  # image 2 waits in the queue
            time.sleep(0.01)
        full = c.post("/v1/scan", files=files(("3.png", png(seed=13))))
        assert error_of(full, 429) == "queue-full" and full.headers["retry-after"] == "1"
        assert c.get("/healthz").status_code == 200
        gate.set()
        first.join(30), second.join(30)
        assert answers == [200, 200]
    finally:
        gate.set()
        c.__exit__(None, None, None)


def test_timeout(tmp_path, gated_model):
    model, gate, _ = gated_model
    c = started_client(tmp_path, model, timeout_s=0.3)
    try:
        gate.clear()
        assert error_of(c.post("/v1/scan", files=files(("1.png", png(seed=14)))), 504) == "timeout"
    finally:
        gate.set()
        c.__exit__(None, None, None)


def test_refuses_public_bind_without_key():
    with pytest.raises(ValueError, match="without an API key"):
        Settings(host="0.0.0.0").check_exposure()
    Settings(host="0.0.0.0", api_key="k").check_exposure()
    Settings(host="::1").check_exposure()
    Settings(host="localhost").check_exposure()


def test_serve_command_refuses_public_bind_without_key():
    from typer.testing import CliRunner

    from synthscan.cli.main import app

    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"], env={"SYNTHSCAN_API_KEY": ""})
    assert result.exit_code == 2 and "without an API key" in result.output


def test_serve_command_names_a_history_it_cannot_open(tmp_path):
    from typer.testing import CliRunner

    from synthscan.cli.main import app

    url = f"sqlite:///{tmp_path}"  # a folder, not a database file
    result = CliRunner().invoke(app, ["serve", "--database", url], env={"COLUMNS": "400"})
    assert result.exit_code == 2, result.output
    assert f"error: cannot open the history at {url}" in result.output and "Traceback" not in result.output


def test_inference_failure_is_a_json_500(tmp_path, tiny_model):
    c = started_client(tmp_path, tiny_model, raise_server_exceptions=False)
    c.app.state.worker.scanner.scan_images = lambda images: 1 / 0
    try:
        r = c.post("/v1/scan", files=files(("a.png", png(seed=8))))
        assert r.status_code == 500 and r.json()["error"]["code"] == "internal"
        assert c.get("/healthz").status_code == 200
    finally:
        c.__exit__(None, None, None)


def test_page_and_static(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for name in ("app.js", "serve.css", "report.css"):
        assert client.get(f"/static/{name}").status_code == 200
    assert error_of(client.get("/static/..%2f..%2fapp.py"), 404) == "not-found"
    assert error_of(client.get("/static/history.py"), 404) == "not-found"

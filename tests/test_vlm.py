"""VLM narrators: a fake OpenAI-compatible server on 127.0.0.1 and a tiny random LLaVA, all offline."""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch
from PIL import Image

from synthscan.explain.schema import ArtifactFinding, Explanation, Region
from synthscan.explain.vlm import (
    NarrationError,
    OpenAICompatibleNarrator,
    TemplateNarrator,
    TransformersNarrator,
    make_narrator,
)
from synthscan.explain.vlm.prompt import AnswerInvalid, parse_answer
from tiny_hf import IMAGE_ID, tiny_llava

ARTIFACTS = [
    ("grid-checkerboard-pattern", "Regular grid-like / checkerboard patterns in textures", "frequency"),
    ("malformed-text", "Illegible or malformed text and symbols", "mechanical"),
    ("smooth-background", "Smooth, low-detail backgrounds", "style"),
]
EVIDENCE = Explanation(
    regions=[Region(box=(8, 4, 40, 30), score=0.81)],
    artifacts=[ArtifactFinding(
        id="grid-checkerboard-pattern", name=ARTIFACTS[0][1], group="frequency", score=0.72,
        evidence="measured", explanation="Spectral peaks at 1/2 cycles per pixel.", box=(16, 8, 48, 40),
    )],
)
W, H = 64, 48


def answer(artifact_id="grid-checkerboard-pattern", box=(16, 8, 48, 40), summary="Looks generated.") -> str:
    return json.dumps({
        "artifacts": [{"id": artifact_id, "name": "whatever the model calls it",
                       "explanation": "A fine grid shows in the sky.", "box": list(box) if box else None}],
        "summary": summary,
    })


@pytest.fixture
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)


class FakeServer:
    """Answers each POST with the next scripted reply; records every request body and header."""

    def __init__(self):
        self.replies: list = []  # str (chat content) or (status, body)
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.reject_json_mode = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                outer.headers.append(dict(self.headers))
                if outer.reject_json_mode and "response_format" in body:
                    status, text = 400, '{"error": "response_format is not supported"}'
                elif self.path != "/v1/chat/completions":
                    status, text = 404, "not found"
                else:
                    reply = outer.replies.pop(0) if len(outer.replies) > 1 else outer.replies[0]
                    status, text = reply if isinstance(reply, tuple) else (
                        200, json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]}))
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def narrator(self, **options) -> OpenAICompatibleNarrator:
        return OpenAICompatibleNarrator(self.url, "fake-model", artifacts=ARTIFACTS, timeout=10, **options)


@pytest.fixture
def server():
    fake = FakeServer()
    yield fake
    fake.httpd.shutdown()
    fake.httpd.server_close()


def _prompt(request: dict) -> str:
    return request["messages"][0]["content"][0]["text"]


def _sent_image(request: dict) -> Image.Image:
    url = request["messages"][0]["content"][1]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def test_valid_answer_becomes_a_narrative(server, rgb):
    server.replies = [answer()]
    narrative = server.narrator(api_key="sekrit").narrate(rgb, EVIDENCE, 0.93, "ai-generated")

    assert narrative.source == "vlm:fake-model" and narrative.summary == "Looks generated."
    [finding] = narrative.artifacts
    assert (finding.id, finding.name, finding.group) == ARTIFACTS[0]  # taxonomy's name, not the model's
    assert finding.evidence == "model" and finding.score == 0.72 and finding.box == (16, 8, 48, 40)

    [request] = server.requests
    assert request["model"] == "fake-model" and request["response_format"] == {"type": "json_object"}
    assert server.headers[0]["Authorization"] == "Bearer sekrit"
    assert np.array_equal(np.asarray(_sent_image(request).convert("RGB")), rgb)
    prompt = _prompt(request)
    for needed in ("ai-generated", "0.93", "[8, 4, 40, 30]", "grid-checkerboard-pattern", "[16, 8, 48, 40]",
                   "Spectral peaks", "64 x 48", "malformed-text: Illegible", '"summary"'):
        assert needed in prompt


def test_invalid_then_valid_retries_with_the_error(server, rgb):
    server.replies = [answer(artifact_id="made-up-artifact"), "```json\n" + answer() + "\n```"]
    narrative = server.narrator().narrate(rgb, EVIDENCE, 0.93, "ai-generated")
    assert narrative.artifacts[0].id == "grid-checkerboard-pattern"

    first, second = server.requests
    assert len(first["messages"]) == 1 and len(second["messages"]) == 3
    assert second["messages"][1] == {"role": "assistant", "content": answer(artifact_id="made-up-artifact")}
    follow_up = second["messages"][2]
    assert follow_up["role"] == "user" and "made-up-artifact" in follow_up["content"]
    assert "not one of the allowed artifact ids" in follow_up["content"]


def test_never_valid_raises_after_bounded_retries(server, rgb):
    server.replies = ["I think it is fake because of the hands."]
    with pytest.raises(NarrationError, match="3 attempts") as caught:
        server.narrator().narrate(rgb, EVIDENCE, 0.93, "ai-generated")
    assert len(server.requests) == 3 and "no JSON object" in str(caught.value)

    server.requests.clear()
    with pytest.raises(NarrationError, match="1 attempts"):
        server.narrator(retries=0).narrate(rgb, EVIDENCE, 0.93, "ai-generated")
    assert len(server.requests) == 1


def test_box_outside_the_image_is_rejected(server, rgb):
    server.replies = [answer(box=(10, 10, 80, 20)), answer(box=None)]
    narrative = server.narrator().narrate(rgb, EVIDENCE, 0.93, "ai-generated")
    assert narrative.artifacts[0].box is None
    assert "outside the 64x48 image" in server.requests[1]["messages"][2]["content"]


def test_json_mode_is_dropped_when_the_server_rejects_it(server, rgb):
    server.replies, server.reject_json_mode = [answer()], True
    narrator = server.narrator()
    assert narrator.narrate(rgb, EVIDENCE, 0.93, "ai-generated").summary == "Looks generated."
    assert ["response_format" in r for r in server.requests] == [True, False]
    narrator.narrate(rgb, EVIDENCE, 0.93, "ai-generated")
    assert "response_format" not in server.requests[-1]


def test_large_images_are_downscaled_and_boxes_mapped_back(server, rgb):
    server.replies = [answer(box=(8, 4, 24, 20))]  # in the 32x24 image the model sees
    narrative = server.narrator(max_side=32).narrate(rgb, EVIDENCE, 0.93, "ai-generated")
    assert _sent_image(server.requests[0]).size == (32, 24)
    prompt = _prompt(server.requests[0])
    assert "32 x 24 pixels" in prompt and "[4, 2, 20, 15]" in prompt  # the region box, halved
    assert narrative.artifacts[0].box == (16, 8, 48, 40)


def test_http_errors_and_unreachable_servers_are_clear(server, rgb):
    server.replies = [(500, "boom")]
    with pytest.raises(NarrationError, match="HTTP 500: boom"):
        server.narrator(json_mode=False).narrate(rgb, EVIDENCE, 0.5, "uncertain")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    narrator = OpenAICompatibleNarrator(f"http://127.0.0.1:{port}/v1", "m", artifacts=ARTIFACTS, timeout=5)
    with pytest.raises(NarrationError, match="cannot reach"):
        narrator.narrate(rgb, EVIDENCE, 0.5, "uncertain")


def test_parse_answer_rules():
    ids = [a[0] for a in ARTIFACTS]
    assert parse_answer("Sure! " + answer() + " Hope this helps.", ids, (W, H)).summary == "Looks generated."
    with pytest.raises(AnswerInvalid, match="summary"):
        parse_answer(json.dumps({"artifacts": []}), ids, (W, H))
    with pytest.raises(AnswerInvalid, match="box"):
        parse_answer(answer(box=(30, 10, 20, 40)), ids, (W, H))  # x1 < x0
    with pytest.raises(AnswerInvalid, match="JSON"):
        parse_answer('{"artifacts": [}', ids, (W, H))


def test_make_narrator_specs():
    narrator = make_narrator("openai:http://127.0.0.1:11434/v1#llava:13b", artifacts=ARTIFACTS)
    assert isinstance(narrator, OpenAICompatibleNarrator)
    assert narrator.url == "http://127.0.0.1:11434/v1/chat/completions" and narrator.model_name == "llava:13b"
    assert isinstance(make_narrator("template"), TemplateNarrator)
    for bad in ("openai:http://host/v1", "hf:", "gpt"):
        with pytest.raises(ValueError, match="unknown narrator"):
            make_narrator(bad)


def test_template_narrator_writes_from_the_evidence(rgb):
    pytest.importorskip("synthscan.explain.template")
    narrative = make_narrator("template", threshold=0.5).narrate(rgb, EVIDENCE, 0.93, "ai-generated")
    assert narrative.source == "template" and narrative.summary


@pytest.fixture(scope="module")
def llava():
    torch.set_num_threads(1)
    return tiny_llava()


def test_tiny_llava_generates_end_to_end_then_fails_validation_clearly(llava, rgb):
    model, processor = llava
    calls = []
    real_generate = model.generate

    def recording_generate(**inputs):
        calls.append(inputs)
        return real_generate(**inputs)

    narrator = TransformersNarrator("tiny-llava", model=model, processor=processor, device="cpu",
                                    max_new_tokens=4, artifacts=ARTIFACTS, retries=1)
    model.generate = recording_generate
    try:
        with pytest.raises(NarrationError, match="tiny-llava gave no valid answer in 2 attempts"):
            narrator.narrate(rgb, EVIDENCE, 0.93, "ai-generated")
    finally:
        del model.generate
    assert len(calls) == 2
    first, second = calls
    assert first["pixel_values"].shape == (1, 3, 32, 32)
    assert int((first["input_ids"] == IMAGE_ID).sum()) == 16  # the image's patch tokens
    assert second["input_ids"].shape[1] > first["input_ids"].shape[1]  # the retry carries the history


def test_hf_spec_loads_a_saved_model_directory(llava, rgb, tmp_path):
    model, processor = llava
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    narrator = make_narrator(f"hf:{tmp_path}", device="cpu", max_new_tokens=2, artifacts=ARTIFACTS, retries=0)
    assert isinstance(narrator, TransformersNarrator) and narrator.model is not model
    with pytest.raises(NarrationError, match="1 attempts"):
        narrator.narrate(rgb, EVIDENCE, 0.93, "ai-generated")


def test_tiny_llava_success_path_with_scripted_tokens(llava, rgb, monkeypatch):
    model, processor = llava
    scripted = processor.tokenizer(answer(), return_tensors="pt", add_special_tokens=False)["input_ids"]
    monkeypatch.setattr(model, "generate", lambda input_ids, **kw: torch.cat([input_ids, scripted], dim=1))
    narrator = TransformersNarrator("tiny-llava", model=model, processor=processor, device="cpu", artifacts=ARTIFACTS)
    narrative = narrator.narrate(rgb, EVIDENCE, 0.93, "ai-generated")
    assert narrative.source == "vlm:tiny-llava" and narrative.artifacts[0].box == (16, 8, 48, 40)


def test_the_prompt_says_which_findings_are_whole_image_properties():
    from synthscan.explain.vlm.prompt import build_prompt

    saturated = ArtifactFinding(id="smooth-background", name=ARTIFACTS[2][1], group="style", score=0.9,
                                evidence="measured", explanation="Half the image is flat.", box=(0, 0, 32, 48),
                                extent="image")
    evidence = EVIDENCE.model_copy(update={"artifacts": [*EVIDENCE.artifacts, saturated]})
    prompt = build_prompt(evidence, 0.9, "ai-generated", ARTIFACTS, (W, H))
    assert "grid-checkerboard-pattern (measured, score 0.72, box [16, 8, 48, 40])" in prompt
    assert "smooth-background (measured, score 0.90, whole image, strongest in box [0, 0, 32, 48])" in prompt

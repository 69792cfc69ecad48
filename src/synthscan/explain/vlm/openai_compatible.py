"""Narration by any OpenAI-compatible chat endpoint: Ollama, vLLM, LM Studio, llama.cpp server, ...

`base_url` is the API root including `/v1` (e.g. `http://127.0.0.1:11434/v1` for Ollama); the
narrator POSTs to `{base_url}/chat/completions` with the image as a base64 data URL. It asks
for JSON output (`response_format: {"type": "json_object"}`); a server that rejects that field
with HTTP 400 is asked again without it, and the field is left out from then on. Uses `httpx`
when installed, else the standard library.
"""

from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.request
from typing import Sequence

from PIL import Image

from synthscan.explain.taxonomy_choices import ArtifactChoice
from synthscan.explain.vlm.narrator import ChatNarrator, NarrationError, Turn


def data_url(image: Image.Image, image_format: str = "png") -> str:
    buf = io.BytesIO()
    image.save(buf, "JPEG" if image_format == "jpeg" else "PNG", **({"quality": 95} if image_format == "jpeg" else {}))
    return f"data:image/{image_format};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def post_json(url: str, payload: dict, headers: dict[str, str], timeout: float) -> tuple[int, str]:
    """(HTTP status, response body); raises OSError when the server cannot be reached."""
    try:
        import httpx
    except ModuleNotFoundError:
        request_headers = {**headers, "Content-Type": "application/json"}
        request = urllib.request.Request(url, json.dumps(payload).encode(), request_headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")
    try:
        response = httpx.post(url, json=payload, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise OSError(str(exc)) from exc
    return response.status_code, response.text


class OpenAICompatibleNarrator(ChatNarrator):
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout: float = 120.0,
        json_mode: bool = True,
        max_tokens: int = 1024,
        image_format: str = "png",
        artifacts: Sequence[ArtifactChoice] | None = None,
        retries: int = 2,
        max_side: int = 1024,
    ):
        super().__init__(artifacts, retries, max_side)
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model_name = model
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = timeout
        self.json_mode = json_mode
        self.max_tokens = max_tokens
        self.image_format = image_format

    def messages(self, image: Image.Image, turns: list[Turn]) -> list[dict]:
        first, *rest = turns
        content = [
            {"type": "text", "text": first["text"]},
            {"type": "image_url", "image_url": {"url": data_url(image, self.image_format)}},
        ]
        return [{"role": "user", "content": content}] + [{"role": t["role"], "content": t["text"]} for t in rest]

    def complete(self, image: Image.Image, turns: list[Turn]) -> str:
        payload = {
            "model": self.model_name,
            "messages": self.messages(image, turns),
            "temperature": 0.0,
            "max_tokens": self.max_tokens,
        }
        status, body = self._post(payload)
        if status == 400 and self.json_mode:  # the server may not support JSON mode: ask without it
            self.json_mode = False
            status, body = self._post(payload)
        if status != 200:
            raise NarrationError(f"{self.url} answered HTTP {status}: {body[:300]}")
        try:
            return json.loads(body)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise NarrationError(f"{self.url} sent no chat completion: {body[:300]}") from None

    def _post(self, payload: dict) -> tuple[int, str]:
        if self.json_mode:
            payload = {**payload, "response_format": {"type": "json_object"}}
        try:
            return post_json(self.url, payload, self.headers, self.timeout)
        except OSError as exc:  # refused, unreachable, timed out
            raise NarrationError(f"cannot reach {self.url}: {exc}") from exc

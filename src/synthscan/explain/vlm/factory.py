"""`make_narrator(spec)`: a narrator from one string, as given on the command line.

    template                                  the offline template (no model)
    openai:http://127.0.0.1:11434/v1#llava    an OpenAI-compatible endpoint: base URL '#' model name
    hf:llava-hf/llava-1.5-7b-hf               a local transformers model: hub id, directory or preset

For `openai:` the API key, when the server needs one, is read from `SYNTHSCAN_VLM_API_KEY`.
Keyword arguments go to the backend's constructor (e.g. `artifacts`, `retries`, `timeout`).
"""

from __future__ import annotations

import os

from synthscan.explain.vlm.narrator import Narrator


def make_narrator(spec: str, **options) -> Narrator:
    kind, _, rest = spec.partition(":")
    if spec == "template":
        from synthscan.explain.vlm.template_narrator import TemplateNarrator

        return TemplateNarrator(**options)
    if kind == "openai" and "#" in rest:
        from synthscan.explain.vlm.openai_compatible import OpenAICompatibleNarrator

        base_url, _, model = rest.rpartition("#")
        options.setdefault("api_key", os.environ.get("SYNTHSCAN_VLM_API_KEY"))
        return OpenAICompatibleNarrator(base_url, model, **options)
    if kind == "hf" and rest:
        from synthscan.explain.vlm.transformers_narrator import TransformersNarrator

        return TransformersNarrator(rest, **options)
    raise ValueError(
        f"unknown narrator {spec!r}: use 'template', 'openai:BASE_URL#MODEL' or 'hf:MODEL_ID_OR_PRESET'"
    )

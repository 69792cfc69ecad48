"""Narratives from vision-language models, grounded in the measured evidence.

Backends: `OpenAICompatibleNarrator` (Ollama, vLLM, LM Studio, ...), `TransformersNarrator`
(local MiniCPM-V, LLaVA, Idefics2, Qwen2-VL, ...) and `TemplateNarrator` (offline, no model).
`make_narrator("openai:http://127.0.0.1:11434/v1#llava")` builds one from a string. Heavy
dependencies (transformers, httpx) are imported only when a backend is used.
"""

from synthscan.explain.vlm.factory import make_narrator
from synthscan.explain.vlm.narrator import ChatNarrator, NarrationError, Narrator
from synthscan.explain.vlm.openai_compatible import OpenAICompatibleNarrator
from synthscan.explain.vlm.prompt import NarrationAnswer
from synthscan.explain.vlm.template_narrator import TemplateNarrator
from synthscan.explain.vlm.transformers_narrator import PRESETS, TransformersNarrator

__all__ = [
    "ChatNarrator", "NarrationAnswer", "NarrationError", "Narrator", "OpenAICompatibleNarrator", "PRESETS",
    "TemplateNarrator", "TransformersNarrator", "make_narrator",
]

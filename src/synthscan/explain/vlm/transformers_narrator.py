"""Narration by a local `transformers` vision-language model.

Most models load with `AutoModelForImageTextToText` + `AutoProcessor` and are prompted through the
processor's chat template. MiniCPM-V 2.6 is not part of `transformers`: it loads with
`trust_remote_code=True` and is prompted through its own `chat` method. Generation is greedy.
`PRESETS` maps short names to hub ids; any other id or local directory works too.
"""

from __future__ import annotations

from typing import Sequence

from PIL import Image

from synthscan.explain.taxonomy_choices import ArtifactChoice
from synthscan.explain.vlm.narrator import ChatNarrator, Turn

PRESETS = {
    "minicpm-v-2.6": "openbmb/MiniCPM-V-2_6",  # report 000's narrator (remote code)
    "llava-1.5-7b": "llava-hf/llava-1.5-7b-hf",
    "llava-next-7b": "llava-hf/llava-v1.6-mistral-7b-hf",
    "idefics2-8b": "HuggingFaceM4/idefics2-8b",  # report 002's narrator
    "qwen2-vl-2b": "Qwen/Qwen2-VL-2B-Instruct",
    "qwen2-vl-7b": "Qwen/Qwen2-VL-7B-Instruct",
}
# Models whose code lives in their hub repository, prompted through their own `chat` method.
REMOTE_CHAT_MODELS = {"openbmb/MiniCPM-V-2_6"}


class TransformersNarrator(ChatNarrator):
    """`model_id` is a preset name, a hub id or a local directory. Pass `model` and `processor`
    to use objects already built (tests build a tiny random LLaVA)."""

    def __init__(
        self,
        model_id: str,
        *,
        model=None,
        processor=None,
        device: str | None = None,
        dtype: str = "auto",
        max_new_tokens: int = 512,
        artifacts: Sequence[ArtifactChoice] | None = None,
        retries: int = 2,
        max_side: int = 1024,
    ):
        super().__init__(artifacts, retries, max_side)
        import torch

        self.model_name = PRESETS.get(model_id, model_id)
        self.remote_chat = self.model_name in REMOTE_CHAT_MODELS
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if model is None or processor is None:
            model, processor = self._load(dtype)
        self.model = model.to(device).eval()
        self.processor = processor
        self.max_new_tokens = max_new_tokens

    def _load(self, dtype: str):
        if self.remote_chat:
            from transformers import AutoModel, AutoTokenizer

            return (
                AutoModel.from_pretrained(self.model_name, trust_remote_code=True, dtype=dtype),
                AutoTokenizer.from_pretrained(self.model_name, trust_remote_code=True),
            )
        from transformers import AutoModelForImageTextToText, AutoProcessor

        return AutoModelForImageTextToText.from_pretrained(self.model_name, dtype=dtype), AutoProcessor.from_pretrained(
            self.model_name
        )

    def complete(self, image: Image.Image, turns: list[Turn]) -> str:
        import torch

        with torch.inference_mode():
            if self.remote_chat:
                # MiniCPM-V's chat takes the image inside the first message's content list.
                msgs = [{"role": t["role"], "content": [t["text"]]} for t in turns]
                msgs[0]["content"].insert(0, image)
                return self.model.chat(image=None, msgs=msgs, tokenizer=self.processor, sampling=False,
                                       max_new_tokens=self.max_new_tokens)
            return self._generate(image, turns)

    def _generate(self, image: Image.Image, turns: list[Turn]) -> str:
        conversation = [{"role": t["role"], "content": [{"type": "text", "text": t["text"]}]} for t in turns]
        conversation[0]["content"].insert(0, {"type": "image"})
        text = self.processor.apply_chat_template(conversation, add_generation_prompt=True)
        inputs = self.processor(images=[image], text=text, return_tensors="pt")
        inputs = inputs.to(self.model.device).to(self.model.dtype)  # the dtype applies to float tensors only
        output = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        return self.processor.batch_decode(new_tokens, skip_special_tokens=True)[0]

"""Tiny random-weight `transformers` models and processors, built offline for the CLIP and VLM tests.

The tokenizer is character-level (every printable ASCII character is a token), so any prompt
tokenizes and any ASCII text round-trips exactly through encode/decode.
"""

from __future__ import annotations

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import (
    CLIPConfig,
    CLIPImageProcessor,
    CLIPModel,
    CLIPProcessor,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerFast,
    SiglipConfig,
    SiglipModel,
    SiglipProcessor,
)

SPECIALS = ["<unk>", "<pad>", "<s>", "</s>", "<image>"]
CHARS = [chr(i) for i in range(32, 127)] + ["\n"]
VOCAB = {token: i for i, token in enumerate(SPECIALS + CHARS)}
EOS_ID = VOCAB["</s>"]
IMAGE_ID = VOCAB["<image>"]
MAX_TEXT = 160
IMAGE_SIZE, PATCH = 32, 8  # 16 image patches


def char_tokenizer(append_eos: bool, max_length: int = MAX_TEXT) -> PreTrainedTokenizerFast:
    backend = Tokenizer(models.WordLevel(VOCAB, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    if append_eos:  # CLIP pools the text at the end-of-sequence token
        backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", EOS_ID)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>",
        extra_special_tokens={"image_token": "<image>"}, model_max_length=max_length,
    )


def image_processor() -> CLIPImageProcessor:
    return CLIPImageProcessor(size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})


def _tower(**extra) -> dict:
    return dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, **extra)


def tiny_clip() -> tuple[CLIPModel, CLIPProcessor]:
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=_tower(vocab_size=len(VOCAB), max_position_embeddings=MAX_TEXT, eos_token_id=EOS_ID,
                           bos_token_id=VOCAB["<s>"], pad_token_id=VOCAB["<pad>"]),
        vision_config=_tower(image_size=IMAGE_SIZE, patch_size=PATCH),
        projection_dim=16,
    )
    return CLIPModel(config).eval(), CLIPProcessor(image_processor(), char_tokenizer(append_eos=True))


def tiny_siglip() -> tuple[SiglipModel, SiglipProcessor]:
    torch.manual_seed(0)
    config = SiglipConfig(
        text_config=_tower(vocab_size=len(VOCAB), max_position_embeddings=MAX_TEXT, pad_token_id=VOCAB["<pad>"]),
        vision_config=_tower(image_size=IMAGE_SIZE, patch_size=PATCH),
    )
    return SiglipModel(config).eval(), SiglipProcessor(image_processor(), char_tokenizer(append_eos=True))


CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'].upper() }}: "
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>\n{% else %}{{ c['text'] }}{% endif %}{% endfor %}"
    "\n{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def tiny_llava() -> tuple[LlavaForConditionalGeneration, LlavaProcessor]:
    torch.manual_seed(0)
    config = LlavaConfig(
        vision_config=dict(model_type="clip_vision_model", **_tower(image_size=IMAGE_SIZE, patch_size=PATCH)),
        text_config=dict(model_type="llama", vocab_size=len(VOCAB), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=8192, pad_token_id=VOCAB["<pad>"], bos_token_id=VOCAB["<s>"],
                         eos_token_id=EOS_ID),
        image_token_index=IMAGE_ID,
        image_seq_length=(IMAGE_SIZE // PATCH) ** 2,
        vision_feature_layer=-1,
    )
    processor = LlavaProcessor(
        image_processor=image_processor(), tokenizer=char_tokenizer(append_eos=False, max_length=8192),
        patch_size=PATCH, vision_feature_select_strategy="default", chat_template=CHAT_TEMPLATE,
        num_additional_image_tokens=1,
    )
    return LlavaForConditionalGeneration(config).eval(), processor

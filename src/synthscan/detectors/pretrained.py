"""Pretrained backbones for the transfer-learning detectors (`rine`, `backbone`).

A backbone comes from one of three places:
- a Hugging Face hub id (e.g. "openai/clip-vit-base-patch32"), loaded with `from_pretrained`.
  The weights must be in the local Hugging Face cache, or the hub must be reachable;
- a local folder written by `save_pretrained` (config.json + weights);
- an inline config dict: the architecture with random weights (tests, or training from scratch).

What is saved: weights that came from a hub id or a folder and stay frozen are NOT written into
synthscan's safetensors. They never change, and ViT-L/14 alone is 1.2 GB. Loading a saved model
rebuilds the backbone from the id or folder named in its JSON config, then loads the saved
trainable weights on top. Weights built from an inline config are random, so they are always saved.
"""

from __future__ import annotations

from typing import Any, Callable

from torch import nn


class BackboneUnavailable(OSError):
    """The pretrained weights a detector names cannot be found (offline and not cached)."""


def build_hf_model(
    model_class: str, config_class: str, source: str, inline_config: dict[str, Any] | None,
    *, local_files_only: bool = False, **model_kwargs,
) -> nn.Module:
    """A `transformers` model: random weights from `inline_config`, else pretrained from `source`."""
    import transformers

    model_cls = getattr(transformers, model_class)
    if inline_config is not None:
        return model_cls(getattr(transformers, config_class)(**inline_config), **model_kwargs).eval()
    try:
        model = model_cls.from_pretrained(source, local_files_only=local_files_only, **model_kwargs)
    except OSError as exc:
        raise unavailable(source, exc) from exc
    return model.float().eval()  # float32 whatever the checkpoint's dtype: detectors run on CPU


def unavailable(source: str, cause: Exception) -> BackboneUnavailable:
    return BackboneUnavailable(
        f"cannot load the pretrained backbone {source!r}: its weights must be available locally, either "
        f"as a folder written by save_pretrained or in the Hugging Face cache (download them once where "
        f"the network is reachable, e.g. `huggingface-cli download {source}`, then set HF_HUB_OFFLINE=1). "
        f"Cause: {cause}"
    )


def keep_out_of_state_dict(module: nn.Module, is_pretrained: Callable[[str], bool]) -> None:
    """Drop the keys for which `is_pretrained(key)` holds from `module.state_dict()`, and let
    `module.load_state_dict` accept their absence (the backbone's constructor already loaded them).

    `module` must be the top-level module that gets saved and loaded (the detector).
    """

    def drop(mod, state_dict, prefix, local_metadata):
        for key in [k for k in state_dict if k.startswith(prefix) and is_pretrained(k[len(prefix):])]:
            del state_dict[key]

    def allow_missing(mod, incompatible_keys):
        incompatible_keys.missing_keys[:] = [k for k in incompatible_keys.missing_keys if not is_pretrained(k)]

    module.register_state_dict_post_hook(drop)
    module.register_load_state_dict_post_hook(allow_missing)

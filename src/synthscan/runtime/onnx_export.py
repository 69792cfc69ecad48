"""Export a trained model as ONNX plus the JSON that carries its calibration and decision.

Layout of an export folder: `<name>.onnx` and `<name>.json` (the model's `ModelInfo` with an added
`onnx` block saying what the graph takes). `synthscan.runtime.onnx_model.load_onnx_model` reads it.
A model that routes re-compressed images to a second head (`ModelInfo.recompressed`) is exported
with that head, into the same folder.

- Networks go through `torch.onnx.export` (TorchScript exporter, dynamic
  batch axis): the graph maps tiles (N, 3, H, W) in [0, 1] to raw logits (N,). Tested with npr;
  a network using an operator the exporter lacks fails here with torch's message.
- texture-gbm: the gradient-boosted trees become one `ai.onnx.ml.TreeEnsembleRegressor` built from
  the stored node arrays (thresholds kept in float64), mapping features (N, D) to raw logits. The
  feature computation stays in synthscan's torch code: it counts histograms with `torch.bincount`,
  which no ONNX exporter supports ("Exporting the operator 'aten::bincount' to ONNX ... is not
  supported"), so the ONNX runtime of this model still needs torch for the features.
- clip-blocks: its tower already is an ONNX graph; the export is that graph with CLIP's
  normalisation put in front and the linear head (CLS token of every block, standardised, dot
  the weights) put behind, so it maps tiles in [0, 1] to raw logits like a network export. Its
  tower is dynamically quantised (INT8 scales computed from the whole input), so the export is
  marked `one_at_a_time` and the runtime feeds it one image per run, as the detector does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from synthscan.detectors.base import CalibratedModel
from synthscan.detectors.registry import load_model
from synthscan.output import write_text_atomic

OPSET = 17
ML_OPSET = 3  # TreeEnsembleRegressor with float64 thresholds (`nodes_values_as_tensor`)
IR_VERSION = 8  # onnx 1.23 writes IR 14 by default; onnxruntime 1.22 reads up to 10


def export_onnx(model: str | Path | CalibratedModel, out_dir: str | Path, stem: str | None = None) -> Path:
    """Write `<out_dir>/<stem>.onnx` and `<stem>.json` (stem: the model's name); returns the JSON path."""
    model = load_model(model)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = stem or model.name
    onnx_path = out_dir / f"{stem}.onnx"
    if model.info.detector == "clip-blocks":
        graph_input, extra = "tiles", {"one_at_a_time": True}
        tmp = onnx_path.with_name(f".{onnx_path.name}.tmp")
        tmp.write_bytes(_clip_blocks_graph(model.detector).SerializeToString())
        tmp.replace(onnx_path)
    elif model.info.detector == "texture-gbm":
        graph_input = "features"
        tmp = onnx_path.with_name(f".{onnx_path.name}.tmp")
        tmp.write_bytes(_tree_ensemble(model.detector).SerializeToString())
        tmp.replace(onnx_path)
        extra = {"feature_groups": list(model.detector.config.features)}
    else:
        graph_input = "tiles"
        _export_network(model, onnx_path)
        extra = {}
    if model.recompressed_scorer is not None:  # its head for re-compressed images goes along, same folder
        export_onnx(model.recompressed_scorer, out_dir, stem=model.info.recompressed.model)
    record = model.info.model_dump(mode="json")
    record["config"] = model.detector.config.model_dump(mode="json")
    record["onnx"] = {"file": onnx_path.name, "input": graph_input, "opset": OPSET, **extra}
    return write_text_atomic(out_dir / f"{stem}.json", json.dumps(record, indent=2) + "\n")


def _export_network(model: CalibratedModel, path: Path) -> None:
    crop = model.input_policy.crop_size
    example = torch.rand(2, 3, crop, crop)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.onnx.export(model.detector.eval(), (example,), str(tmp), dynamo=False, opset_version=OPSET,
                      input_names=["tiles"], output_names=["logits"],
                      dynamic_axes={"tiles": {0: "n"}, "logits": {0: "n"}})
    tmp.replace(path)


def _clip_blocks_graph(detector) -> "onnx.ModelProto":  # noqa: F821
    """The ONNX tower with its block outputs, CLIP normalisation in front and the head behind."""
    from onnx import TensorProto, helper, numpy_helper

    from synthscan.detectors.clip_blocks import BUNDLED_TOWER
    from synthscan.detectors.clip_onnx import block_outputs_model, bundled_onnx_path

    if not detector._is_onnx:
        raise ValueError("only a clip-blocks model with an ONNX tower exports to ONNX (this one uses transformers)")
    if not detector.fitted:
        raise ValueError("clip-blocks is not fitted: nothing to export")
    tower = detector.config.tower
    model, blocks = block_outputs_model(bundled_onnx_path() if tower == BUNDLED_TOWER else tower)
    graph = model.graph
    pixels = graph.input[0].name
    policy = detector.input_policy
    const = lambda name, x, dtype=np.float32: numpy_helper.from_array(np.asarray(x, dtype=dtype), name)  # noqa: E731
    graph.initializer.extend([
        const("clip_mean", np.reshape(policy.mean, (1, 3, 1, 1))), const("clip_std", np.reshape(policy.std, (1, 3, 1, 1))),
        const("cls_index", 0, np.int64), const("feature_mean", detector.feature_mean.numpy()),
        const("feature_scale", detector.feature_scale.numpy()), const("head_weight", detector.weight.numpy()),
        const("head_bias", detector.bias.numpy()),
    ])
    front = [helper.make_node("Sub", ["tiles", "clip_mean"], ["tiles_centred"]),
             helper.make_node("Div", ["tiles_centred", "clip_std"], [pixels])]
    cls = [helper.make_node("Gather", [name, "cls_index"], [f"cls_{i}"], axis=1) for i, name in enumerate(blocks)]
    back = cls + [
        helper.make_node("Concat", [f"cls_{i}" for i in range(len(blocks))], ["tokens"], axis=1),
        helper.make_node("Sub", ["tokens", "feature_mean"], ["tokens_centred"]),
        helper.make_node("Div", ["tokens_centred", "feature_scale"], ["tokens_scaled"]),
        helper.make_node("MatMul", ["tokens_scaled", "head_weight"], ["dot"]),
        helper.make_node("Add", ["dot", "head_bias"], ["logits"]),
    ]
    nodes = front + list(graph.node) + back
    del graph.node[:]
    graph.node.extend(nodes)
    first = graph.input[0]
    graph.input.remove(first)
    graph.input.insert(0, helper.make_tensor_value_info("tiles", first.type.tensor_type.elem_type, ["n", 3, None, None]))
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n"]))
    return model


def _tree_ensemble(detector) -> "onnx.ModelProto":  # noqa: F821
    """The stored trees as one TreeEnsembleRegressor: sum of leaf values + baseline = raw logit."""
    from onnx import TensorProto, helper, numpy_helper

    if not detector.fitted:
        raise ValueError("texture-gbm is not fitted: nothing to export")
    value, feature = detector.tree_value.numpy(), detector.tree_feature.numpy()
    threshold, missing_left = detector.tree_threshold.numpy(), detector.tree_missing_left.numpy()
    left, right, is_leaf = detector.tree_left.numpy(), detector.tree_right.numpy(), detector.tree_is_leaf.numpy()
    nodes: dict[str, list] = {k: [] for k in ("tree", "node", "feature", "value", "mode", "true", "false", "missing")}
    targets: dict[str, list] = {k: [] for k in ("tree", "node", "weight")}
    for t in range(len(value)):
        stack = [0]  # walk from the root: the buffers are padded with unused rows
        while stack:
            n = stack.pop()
            nodes["tree"].append(t)
            nodes["node"].append(n)
            if is_leaf[t, n]:
                nodes["feature"].append(0)
                nodes["value"].append(0.0)
                nodes["mode"].append("LEAF")
                nodes["true"].append(0)
                nodes["false"].append(0)
                nodes["missing"].append(0)
                targets["tree"].append(t)
                targets["node"].append(n)
                targets["weight"].append(value[t, n])
            else:  # scikit-learn: x <= threshold goes left; NaN goes where missing_go_to_left says
                nodes["feature"].append(int(feature[t, n]))
                nodes["value"].append(threshold[t, n])
                nodes["mode"].append("BRANCH_LEQ")
                nodes["true"].append(int(left[t, n]))
                nodes["false"].append(int(right[t, n]))
                nodes["missing"].append(int(missing_left[t, n]))
                stack += [int(right[t, n]), int(left[t, n])]
    as_double = lambda name, xs: numpy_helper.from_array(np.asarray(xs, dtype=np.float64), name)  # noqa: E731
    trees = helper.make_node(
        "TreeEnsembleRegressor", ["features"], ["raw"], domain="ai.onnx.ml", n_targets=1,
        aggregate_function="SUM", post_transform="NONE",
        base_values_as_tensor=as_double("base_values", [detector.baseline.item()]),
        nodes_treeids=nodes["tree"], nodes_nodeids=nodes["node"], nodes_featureids=nodes["feature"],
        nodes_values_as_tensor=as_double("nodes_values", nodes["value"]), nodes_modes=nodes["mode"],
        nodes_truenodeids=nodes["true"], nodes_falsenodeids=nodes["false"],
        nodes_missing_value_tracks_true=nodes["missing"],
        target_ids=[0] * len(targets["node"]), target_treeids=targets["tree"], target_nodeids=targets["node"],
        target_weights_as_tensor=as_double("target_weights", targets["weight"]),
    )
    to_vector = helper.make_node("Reshape", ["raw", "shape"], ["logits"])  # (N, 1) -> (N,)
    shape = numpy_helper.from_array(np.array([-1], dtype=np.int64), "shape")
    graph = helper.make_graph(
        [trees, to_vector], "texture_gbm_trees",
        [helper.make_tensor_value_info("features", TensorProto.DOUBLE, ["n", None])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n"])],
        initializer=[shape],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)])
    proto.ir_version = IR_VERSION
    return proto

"""Running models outside torch: ONNX export (`onnx_export`) and onnxruntime scoring (`onnx_model`)."""

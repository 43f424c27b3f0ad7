"""Export stage: generator checkpoints → PyTorch modules → ONNX with the served uint8 contract.

From there: FP16 and INT8 variants gated on image quality against FP32, a report, and TensorRT
engine builds (``pastiche export``; see ``export/README.md``).
"""

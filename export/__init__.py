"""Export stage: generator checkpoints → PyTorch modules → ONNX with the served uint8 contract."""

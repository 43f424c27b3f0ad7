"""Triton python-backend model that runs an exported style with ONNX Runtime.

Copied by ``deploy.repository`` into ``<style>/<version>/model.py`` next to ``model.onnx``.
The dynamic batcher hands ``execute`` several requests at once; requests whose images share a
shape are stacked into one ONNX Runtime call, which is where batching pays off on a CPU.
"""

from __future__ import annotations

import json
import os
import site
from collections import defaultdict
from pathlib import Path

# The stub embeds an isolated interpreter that ignores PYTHONPATH; the launcher still sets it
# to the venv's site-packages, so add those directories before importing onnxruntime.
for _entry in filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep)):
    site.addsitedir(_entry)

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402


class TritonPythonModel:
    """One ONNX Runtime session per model instance."""

    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        # Tensor names come from config.pbtxt, which the builder writes from pastiche.contract.
        self.input_name = config["input"][0]["name"]
        self.output_name = config["output"][0]["name"]
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.size_multiple = int(params.get("size_multiple", "1"))
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(params.get("intra_op_threads", "0"))
        options.inter_op_num_threads = 1
        # Spinning intra-op threads keep cores busy between parallel sections; on a small CPU host shared with
        # Triton's own threads that starved the scheduler (~0.5 s queue stalls at p99, see benchmarks/README.md).
        spinning = params.get("intra_op_spinning", "0")
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning == "1" else "0")
        model_path = Path(args["model_repository"]) / args["model_version"] / "model.onnx"
        self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])

    def _check(self, image: np.ndarray) -> str | None:
        if image.ndim != 4 or image.shape[-1] != 3:
            return f"'{self.input_name}' must be [N, H, W, 3], got {list(image.shape)}"
        height, width = image.shape[1:3]
        if height % self.size_multiple or width % self.size_multiple:
            return (
                f"height and width must be multiples of {self.size_multiple} for this style, "
                f"got {height}x{width}; pad the image first"
            )
        return None

    def execute(self, requests: list) -> list:
        responses: list = [None] * len(requests)
        groups: dict[tuple[int, ...], list[tuple[int, np.ndarray]]] = defaultdict(list)
        for index, request in enumerate(requests):
            image = pb_utils.get_input_tensor_by_name(request, self.input_name).as_numpy()
            problem = self._check(image)
            if problem:
                responses[index] = pb_utils.InferenceResponse(error=pb_utils.TritonError(problem))
            else:
                groups[image.shape[1:]].append((index, image))
        for members in groups.values():
            batch = np.concatenate([image for _, image in members], axis=0)
            try:
                stylized = self.session.run([self.output_name], {self.input_name: batch})[0]
            except Exception as error:  # an ORT failure must fail its requests, not the model
                for index, _ in members:
                    responses[index] = pb_utils.InferenceResponse(error=pb_utils.TritonError(str(error)))
                continue
            offset = 0
            for index, image in members:
                part = np.ascontiguousarray(stylized[offset : offset + len(image)])
                offset += len(image)
                responses[index] = pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(self.output_name, part)])
        return responses

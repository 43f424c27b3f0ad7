"""Triton model repository builder: ``<repo>/<style>/config.pbtxt`` and ``<repo>/<style>/<version>/``.

Configs are built as Triton's own ``ModelConfig`` protobuf (shipped by tritonclient) and
rendered with ``text_format``, so every file we write is valid by construction and the same
inputs give byte-identical output.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from pastiche.contract import CHANNELS, INPUT_NAME, OUTPUT_NAME, StyleMetadata

PYTHON_BACKEND_MODEL = Path(__file__).with_name("python_backend_model.py")
"""Source of the python-backend ``model.py`` that runs ONNX Runtime inside the bundled Triton."""


class Target(StrEnum):
    """Which Triton backend serves the style."""

    LOCAL = "local"
    """Python backend running onnxruntime: the Triton binary bundled with nvidia-pytriton."""


@dataclass(frozen=True)
class ServingPolicy:
    """Batching, queueing and instance settings shared by every target."""

    max_batch_size: int = 8
    preferred_batch_sizes: tuple[int, ...] = (4, 8)
    max_queue_delay_us: int = 5_000
    max_queue_size: int = 32
    """Requests beyond this are rejected at once (the gateway answers 503) instead of queueing."""
    queue_timeout_us: int = 10_000_000
    instance_count: int = 1
    warmup_side: int = 64
    """Side of the zero image sent at load so a version is warm before it reports ready."""
    backend_parameters: dict[str, str] = field(default_factory=dict)


def build_config(name: str, metadata: StyleMetadata, target: Target, policy: ServingPolicy) -> mc.ModelConfig:
    """The ``ModelConfig`` for one style; pure, so it is unit-tested without a server."""
    config = mc.ModelConfig(name=name, max_batch_size=policy.max_batch_size)
    if target is Target.LOCAL:
        config.backend = "python"
    config.input.add(name=INPUT_NAME, data_type=mc.TYPE_UINT8, dims=[-1, -1, CHANNELS])
    config.output.add(name=OUTPUT_NAME, data_type=mc.TYPE_UINT8, dims=[-1, -1, CHANNELS])
    batching = config.dynamic_batching
    batching.preferred_batch_size.extend(
        size for size in policy.preferred_batch_sizes if size <= policy.max_batch_size
    )
    batching.max_queue_delay_microseconds = policy.max_queue_delay_us
    batching.default_queue_policy.max_queue_size = policy.max_queue_size
    batching.default_queue_policy.default_timeout_microseconds = policy.queue_timeout_us
    batching.default_queue_policy.timeout_action = mc.ModelQueuePolicy.REJECT
    config.instance_group.add(count=policy.instance_count, kind=mc.ModelInstanceGroup.KIND_CPU)
    side = policy.warmup_side - policy.warmup_side % metadata.size_multiple or metadata.size_multiple
    warmup = config.model_warmup.add(name="zero_image", batch_size=1)
    warmup.inputs[INPUT_NAME].data_type = mc.TYPE_UINT8
    warmup.inputs[INPUT_NAME].dims.extend([side, side, CHANNELS])
    warmup.inputs[INPUT_NAME].zero_data = True
    for key, value in sorted({**metadata.to_parameters(), **policy.backend_parameters}.items()):
        config.parameters[key].string_value = value
    return config


def render_config(config: mc.ModelConfig) -> str:
    """``config.pbtxt`` text for a config (deterministic field order)."""
    return text_format.MessageToString(config)


def parse_config(text: str) -> mc.ModelConfig:
    """Parse ``config.pbtxt`` text; raises ``text_format.ParseError`` on anything Triton would reject."""
    return text_format.Parse(text, mc.ModelConfig())


def model_versions(model_dir: Path) -> list[int]:
    """Numeric version folders of a model, ascending."""
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def write_model(
    repository: Path,
    name: str,
    onnx_path: Path,
    metadata: StyleMetadata,
    target: Target = Target.LOCAL,
    policy: ServingPolicy = ServingPolicy(),
    version: int | None = None,
) -> int:
    """Write ``config.pbtxt`` and a version folder for ``onnx_path``; returns the version written.

    Without ``version`` the next free number is used, so earlier versions stay loadable.
    """
    model_dir = repository / name
    if version is None:
        version = (model_versions(model_dir) or [0])[-1] + 1
    version_dir = model_dir / str(version)
    version_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(onnx_path, version_dir / "model.onnx")
    if target is Target.LOCAL:
        shutil.copyfile(PYTHON_BACKEND_MODEL, version_dir / "model.py")
    (model_dir / "config.pbtxt").write_text(render_config(build_config(name, metadata, target, policy)))
    return version

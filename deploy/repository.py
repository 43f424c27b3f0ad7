"""Triton model repository builder: ``<repo>/<style>/config.pbtxt`` and ``<repo>/<style>/<version>/``.

Configs are built as Triton's own ``ModelConfig`` protobuf (shipped by tritonclient) and
rendered with ``text_format``, so every file we write is valid by construction and the same
inputs give byte-identical output.
"""

from __future__ import annotations

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

    GPU = "gpu"
    """TensorRT plan(s) on ``KIND_GPU`` instances; one plan per compute capability when several are targeted."""
    ONNX = "onnx"
    """Triton's onnxruntime backend, optionally with the TensorRT execution accelerator on GPU hosts."""
    LOCAL = "local"
    """Python backend running onnxruntime: the Triton binary bundled with nvidia-pytriton."""


MODEL_FILENAMES: dict[Target, str] = {Target.GPU: "model.plan", Target.ONNX: "model.onnx", Target.LOCAL: "model.onnx"}
"""The file Triton loads from ``<version>/`` for each target (``model.py`` sits beside it for LOCAL)."""


def plan_filename(compute_capability: str) -> str:
    """Per-GPU-type plan file name, e.g. ``8.9`` → ``model_sm89.plan``."""
    major, _, minor = compute_capability.partition(".")
    if not (major.isdigit() and minor.isdigit()):
        raise ValueError(f"compute capability must look like '8.9', got {compute_capability!r}")
    return f"model_sm{major}{minor}.plan"


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
    loaded_versions: int = 2
    """With no explicit version list, Triton keeps this many newest versions loaded (rollouts keep the previous)."""
    compute_capabilities: tuple[str, ...] = ()
    """GPU target: one plan per listed compute capability (``cc_model_filenames``); empty → one ``model.plan``."""
    onnx_tensorrt: bool = False
    """ONNX target on a GPU host: KIND_GPU instances with the TensorRT execution accelerator."""
    tensorrt_precision: str = "FP16"
    tensorrt_engine_cache: str = "/tmp/pastiche-trt-cache"
    """Where the accelerator keeps built engines, so a restart does not rebuild them."""
    tensorrt_workspace_bytes: int = 1 << 30
    backend_parameters: dict[str, str] = field(default_factory=dict)


def build_config(
    name: str,
    metadata: StyleMetadata,
    target: Target,
    policy: ServingPolicy,
    versions: tuple[int, ...] = (),
) -> mc.ModelConfig:
    """The ``ModelConfig`` for one style; pure, so it is unit-tested without a server.

    ``versions`` pins exactly which versions Triton loads (``specific``), the newest of which
    answers unpinned requests; publishing uses it to keep the previous version loaded beside the
    new one. Without it Triton loads the ``policy.loaded_versions`` newest versions (``latest``).
    """
    config = mc.ModelConfig(name=name, max_batch_size=policy.max_batch_size)
    _set_backend(config, target, policy)
    config.input.add(name=INPUT_NAME, data_type=mc.TYPE_UINT8, dims=[-1, -1, CHANNELS])
    config.output.add(name=OUTPUT_NAME, data_type=mc.TYPE_UINT8, dims=[-1, -1, CHANNELS])
    if versions:
        config.version_policy.specific.versions.extend(sorted(set(versions)))
    else:
        config.version_policy.latest.num_versions = policy.loaded_versions
    batching = config.dynamic_batching
    batching.preferred_batch_size.extend(
        size for size in policy.preferred_batch_sizes if size <= policy.max_batch_size
    )
    batching.max_queue_delay_microseconds = policy.max_queue_delay_us
    batching.default_queue_policy.max_queue_size = policy.max_queue_size
    batching.default_queue_policy.default_timeout_microseconds = policy.queue_timeout_us
    batching.default_queue_policy.timeout_action = mc.ModelQueuePolicy.REJECT
    on_gpu = target is Target.GPU or (target is Target.ONNX and policy.onnx_tensorrt)
    kind = mc.ModelInstanceGroup.KIND_GPU if on_gpu else mc.ModelInstanceGroup.KIND_CPU
    config.instance_group.add(count=policy.instance_count, kind=kind)
    side = policy.warmup_side - policy.warmup_side % metadata.size_multiple or metadata.size_multiple
    warmup = config.model_warmup.add(name="zero_image", batch_size=1)
    warmup.inputs[INPUT_NAME].data_type = mc.TYPE_UINT8
    warmup.inputs[INPUT_NAME].dims.extend([side, side, CHANNELS])
    warmup.inputs[INPUT_NAME].zero_data = True
    for key, value in sorted({**metadata.to_parameters(), **policy.backend_parameters}.items()):
        config.parameters[key].string_value = value
    return config


def _set_backend(config: mc.ModelConfig, target: Target, policy: ServingPolicy) -> None:
    """Backend/platform fields and target-specific optimization settings."""
    if target is Target.LOCAL:
        config.backend = "python"
    elif target is Target.GPU:
        config.platform = "tensorrt_plan"
        config.default_model_filename = MODEL_FILENAMES[Target.GPU]
        for capability in sorted(policy.compute_capabilities):
            config.cc_model_filenames[capability] = plan_filename(capability)
    elif target is Target.ONNX:
        config.platform = "onnxruntime_onnx"
        config.backend = "onnxruntime"
        if policy.onnx_tensorrt:
            accelerator = config.optimization.execution_accelerators.gpu_execution_accelerator.add(name="tensorrt")
            accelerator.parameters["precision_mode"] = policy.tensorrt_precision
            accelerator.parameters["max_workspace_size_bytes"] = str(policy.tensorrt_workspace_bytes)
            accelerator.parameters["trt_engine_cache_enable"] = "1"
            accelerator.parameters["trt_engine_cache_path"] = policy.tensorrt_engine_cache


def served_versions(config: mc.ModelConfig, on_disk: list[int]) -> list[int]:
    """Versions Triton loads under ``config``'s version policy, given the versions present."""
    policy = config.version_policy
    which = policy.WhichOneof("policy_choice")
    if which == "specific":
        return sorted(v for v in policy.specific.versions if v in on_disk)
    if which == "all":
        return sorted(on_disk)
    count = policy.latest.num_versions if which == "latest" else 1
    return sorted(on_disk)[-count:] if count else []


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


def version_files(target: Target, model_bytes: bytes, plans: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """File name → content of one ``<version>/`` folder.

    GPU with ``plans`` (compute capability → plan bytes) writes one plan per GPU type, as the
    config's ``cc_model_filenames`` expects; ``model_bytes`` is then the default plan.
    """
    files = {MODEL_FILENAMES[target]: model_bytes}
    if target is Target.LOCAL:
        files["model.py"] = PYTHON_BACKEND_MODEL.read_bytes()
    if target is Target.GPU:
        files.update({plan_filename(cc): data for cc, data in sorted((plans or {}).items())})
    return files


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

    ``onnx_path`` is the serialized model for ``target``: ONNX for LOCAL and ONNX, a TensorRT
    plan for GPU. Without ``version`` the next free number is used, so earlier versions stay loadable.
    """
    model_dir = repository / name
    if version is None:
        version = (model_versions(model_dir) or [0])[-1] + 1
    version_dir = model_dir / str(version)
    version_dir.mkdir(parents=True, exist_ok=True)
    for filename, data in version_files(target, onnx_path.read_bytes()).items():
        (version_dir / filename).write_bytes(data)
    (model_dir / "config.pbtxt").write_text(render_config(build_config(name, metadata, target, policy)))
    return version

"""TensorRT engines from the exported ONNX variants, with manifests that pin them to their target.

Precision is decided in the ONNX graph (FP16 casts, INT8 Q/DQ nodes), so engines are built
*strongly typed* by default: TensorRT follows the graph. TensorRT 10 may alternatively use its
precision builder flags (``--fp16`` / ``--int8``); TensorRT 11 removed them.

Two real ways to build:

- :func:`build_engine` through the TensorRT Python API, where ``tensorrt`` imports and an
  NVIDIA GPU is present;
- :func:`build_script`: a bash script running ``trtexec`` inside the Triton serving container,
  so the engine's TensorRT version is exactly the one that will deserialize it.

Each engine gets a JSON manifest (TensorRT version, GPU name and compute capability, precision,
profile, source ONNX and engine sha256). :func:`require_compatible` refuses an engine whose
manifest does not match the GPU and TensorRT that would load it: serialized engines are only
valid for the TensorRT version and GPU architecture that built them.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from google.protobuf import text_format
from pydantic import BaseModel, ConfigDict

from pastiche.contract import CHANNELS, INPUT_NAME, StyleMetadata

Precision = Literal["fp32", "fp16", "int8"]
Typing = Literal["strong", "flags"]

VERSIONS_ENV = Path(__file__).resolve().parents[1] / "deploy" / "versions" / "versions.env"
"""Where the deployment pins its image tags (shipped as package data of ``deploy``)."""


def pinned_tag(name: str, versions_env: Path = VERSIONS_ENV) -> str:
    """The value of ``NAME=value`` in ``versions.env``; raises :class:`KeyError` when it is not pinned there."""
    for line in versions_env.read_text().splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith("#") and key == name:
            return value.strip()
    raise KeyError(f"{name} is not pinned in {versions_env}")


TRITON_IMAGE = f"nvcr.io/nvidia/tritonserver:{pinned_tag('TRITON_TAG')}"
"""The NGC Triton image the deployment runs (tag pinned in ``deploy/versions/versions.env``)."""
CONTAINER_TRTEXEC = "/usr/src/tensorrt/bin/trtexec"
DEFAULT_WORKSPACE_MIB = 4096
MIN_SIDE = 64
"""Default smallest side: the generators' reflection pads need at least 2 px at 1/4 resolution (8 px
input), and images below 64 px are not worth a GPU round trip."""


class EngineError(Exception):
    """An engine cannot be planned, built, or loaded; the message says why."""


class EngineMismatch(EngineError):
    """An engine's manifest does not match the GPU / TensorRT that would load it."""


class ServingLimits(BaseModel):
    """The serving side's bounds on requests: batch from the Triton config, sides from the gateway."""

    model_config = ConfigDict(frozen=True)

    max_batch_size: int = 8
    opt_batch: int | None = None
    """Batch size to tune for; defaults to the largest preferred dynamic-batching size, else half the max."""
    min_side: int | None = None
    """Smallest H/W to accept; defaults to :data:`MIN_SIDE` rounded up to the model's size multiple."""
    max_side: int | None = None
    """Largest H/W; defaults to the model's ``max_side`` metadata."""

    @classmethod
    def from_triton_config(cls, pbtxt: str, **overrides: int | None) -> ServingLimits:
        """Read ``max_batch_size`` and preferred batch sizes from a Triton ``config.pbtxt``."""
        from tritonclient.grpc import model_config_pb2

        config = text_format.Parse(pbtxt, model_config_pb2.ModelConfig())
        preferred = list(config.dynamic_batching.preferred_batch_size)
        values: dict[str, int | None] = {
            "max_batch_size": config.max_batch_size or 1,
            "opt_batch": max(preferred) if preferred else None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


class OptimizationProfile(BaseModel):
    """min/opt/max shapes of the uint8 NHWC input."""

    model_config = ConfigDict(frozen=True)

    input: str = INPUT_NAME
    min: tuple[int, int, int, int]
    opt: tuple[int, int, int, int]
    max: tuple[int, int, int, int]

    def trtexec_shapes(self) -> list[str]:
        """``--minShapes/--optShapes/--maxShapes`` arguments."""
        return [
            f"--{kind}Shapes={self.input}:{'x'.join(map(str, getattr(self, kind)))}" for kind in ("min", "opt", "max")
        ]


def _round_down(value: int, multiple: int) -> int:
    return value // multiple * multiple


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def derive_profile(metadata: StyleMetadata, limits: ServingLimits | None = None) -> OptimizationProfile:
    """The optimization profile for a style: sides on its size multiple, tuned for its preferred side.

    Raises :class:`EngineError` when the limits leave no valid shape.
    """
    limits = limits or ServingLimits()
    multiple = metadata.size_multiple
    min_side = _round_up(limits.min_side or MIN_SIDE, multiple)
    max_side = _round_down(limits.max_side or metadata.max_side, multiple)
    if max_side < min_side:
        raise EngineError(f"no valid side: max {max_side} < min {min_side} (sides must be multiples of {multiple})")
    opt_side = min(max(_round_up(metadata.preferred_side, multiple), min_side), max_side)
    if limits.max_batch_size < 1:
        raise EngineError(f"max_batch_size must be >= 1, got {limits.max_batch_size}")
    opt_batch = limits.opt_batch or max(1, limits.max_batch_size // 2)
    if not 1 <= opt_batch <= limits.max_batch_size:
        raise EngineError(f"opt batch {opt_batch} is outside 1..{limits.max_batch_size}")
    return OptimizationProfile(
        min=(1, min_side, min_side, CHANNELS),
        opt=(opt_batch, opt_side, opt_side, CHANNELS),
        max=(limits.max_batch_size, max_side, max_side, CHANNELS),
    )


class TensorRTVersion(BaseModel):
    """A TensorRT release, e.g. 10.5.0."""

    model_config = ConfigDict(frozen=True)

    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> TensorRTVersion:
        """From ``"10.5.0"`` / ``"10.5.0.18"`` or trtexec's banner number ``"100500"``."""
        text = text.strip().lstrip("v")
        if text.isdigit() and len(text) >= 5:
            number = int(text)
            return cls(major=number // 10000, minor=number // 100 % 100, patch=number % 100)
        parts = text.split(".")
        if len(parts) < 2 or not all(p.isdigit() for p in parts[:3]):
            raise EngineError(f"not a TensorRT version: {text!r}")
        return cls(major=int(parts[0]), minor=int(parts[1]), patch=int(parts[2]) if len(parts) > 2 else 0)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def resolve_typing(version: TensorRTVersion, requested: Typing | None) -> Typing:
    """Strong typing unless TensorRT 10 builder flags are asked for (TensorRT 11 has only strong typing)."""
    if version.major < 10:
        raise EngineError(f"TensorRT {version} is not supported; Pastiche builds with TensorRT 10 or newer")
    if requested == "flags" and version.major >= 11:
        raise EngineError("TensorRT 11 removed the precision builder flags; networks are always strongly typed")
    return requested or "strong"


class EngineRequest(BaseModel):
    """One engine to build."""

    model_config = ConfigDict(frozen=True)

    onnx: Path
    engine: Path
    precision: Precision
    profile: OptimizationProfile
    workspace_mib: int = DEFAULT_WORKSPACE_MIB
    timing_cache: Path | None = None


def trtexec_command(
    request: EngineRequest, version: TensorRTVersion, typing: Typing | None = None, trtexec: str = "trtexec"
) -> list[str]:
    """The exact ``trtexec`` argument list that builds ``request`` with TensorRT ``version``."""
    mode = resolve_typing(version, typing)
    command = [
        trtexec,
        f"--onnx={request.onnx}",
        f"--saveEngine={request.engine}",
        *request.profile.trtexec_shapes(),
        f"--memPoolSize=workspace:{request.workspace_mib}M",
    ]
    if request.timing_cache is not None:
        command.append(f"--timingCacheFile={request.timing_cache}")
    if mode == "flags":
        command += {"fp32": [], "fp16": ["--fp16"], "int8": ["--int8"]}[request.precision]
    elif version.major == 10:
        # TensorRT 11 is always strongly typed and no longer needs (or documents) the flag.
        command.append("--stronglyTyped")
    command.append("--skipInference")
    return command


class EngineManifest(BaseModel):
    """What an engine was built from and for; checked before the engine is loaded."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: Precision
    typing: Typing
    profiles: list[OptimizationProfile]
    source_onnx: str
    source_onnx_sha256: str
    engine_sha256: str
    workspace_mib: int
    builder: Literal["python-api", "trtexec"]
    built_at: datetime


class EngineTarget(BaseModel):
    """The GPU and TensorRT an engine is about to be loaded with."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_path(engine: Path) -> Path:
    """Where an engine's manifest lives: next to it, ``<engine>.json``."""
    return engine.with_name(engine.name + ".json")


def check_manifest(
    manifest: EngineManifest,
    target: EngineTarget,
    precision: Precision | None = None,
    onnx_sha256: str | None = None,
    engine_sha256: str | None = None,
) -> list[str]:
    """Every way ``manifest`` fails to match ``target`` (and the expected precision/sources); empty when it fits."""
    problems = []
    if TensorRTVersion.parse(manifest.tensorrt_version) != TensorRTVersion.parse(target.tensorrt_version):
        problems.append(f"built with TensorRT {manifest.tensorrt_version}, target runs {target.tensorrt_version}")
    if manifest.compute_capability != target.compute_capability:
        problems.append(
            f"built for compute capability {manifest.compute_capability}, target GPU is {target.compute_capability}"
        )
    if manifest.gpu_name != target.gpu_name:
        problems.append(f"tuned on {manifest.gpu_name}, target GPU is {target.gpu_name}")
    if precision is not None and manifest.precision != precision:
        problems.append(f"engine precision is {manifest.precision}, expected {precision}")
    if onnx_sha256 is not None and manifest.source_onnx_sha256 != onnx_sha256:
        problems.append("built from a different ONNX file (sha256 differs)")
    if engine_sha256 is not None and manifest.engine_sha256 != engine_sha256:
        problems.append("the engine file is not the one the manifest describes (sha256 differs)")
    return problems


def require_compatible(
    engine: Path, target: EngineTarget, precision: Precision | None = None, onnx: Path | None = None
) -> EngineManifest:
    """Load ``engine``'s manifest and raise :class:`EngineMismatch` unless it matches ``target``."""
    path = manifest_path(engine)
    if not path.is_file():
        raise EngineMismatch(f"{engine}: no manifest at {path}; refusing an engine of unknown origin")
    manifest = EngineManifest.model_validate_json(path.read_text())
    problems = check_manifest(
        manifest,
        target,
        precision=precision,
        onnx_sha256=sha256_of(onnx) if onnx is not None else None,
        engine_sha256=sha256_of(engine) if engine.is_file() else None,
    )
    if not engine.is_file():
        problems.append("the engine file is missing")
    if problems:
        raise EngineMismatch(f"{engine}: " + "; ".join(problems))
    return manifest


class GpuInfo(BaseModel):
    """The first visible NVIDIA GPU."""

    name: str
    compute_capability: str


def detect_gpu() -> GpuInfo | None:
    """The first GPU ``nvidia-smi`` reports, or None where there is no driver or GPU."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        result = subprocess.run(
            [smi, "--query-gpu=name,compute_cap", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (subprocess.SubprocessError, OSError):
        return None
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if not lines:
        return None
    name, capability = (field.strip() for field in lines[0].rsplit(",", 1))
    return GpuInfo(name=name, compute_capability=capability)


def tensorrt_unavailable_reason() -> str | None:
    """Why the Python API build cannot run here, or None when it can."""
    try:
        importlib.import_module("tensorrt")
    except ImportError:
        return "the tensorrt Python package is not installed (pip install 'pastiche[gpu]')"
    if detect_gpu() is None:
        return "no NVIDIA GPU is visible (nvidia-smi found none)"
    return None


def local_target() -> EngineTarget:
    """The GPU and TensorRT of this machine (requires both)."""
    reason = tensorrt_unavailable_reason()
    if reason:
        raise EngineError(reason)
    import tensorrt as trt

    gpu = detect_gpu()
    assert gpu is not None
    return EngineTarget(tensorrt_version=trt.__version__, gpu_name=gpu.name, compute_capability=gpu.compute_capability)


def build_engine(request: EngineRequest, typing: Typing | None = None) -> EngineManifest:
    """Build ``request`` with the TensorRT Python API on this machine's GPU; writes engine, cache, manifest."""
    target = local_target()
    import tensorrt as trt

    version = TensorRTVersion.parse(trt.__version__)
    mode = resolve_typing(version, typing)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if mode == "strong" and version.major == 10:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(request.onnx.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f"{request.onnx}: TensorRT could not parse the model: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, request.workspace_mib << 20)
    if mode == "flags":
        if request.precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        elif request.precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
    cache_bytes = request.timing_cache.read_bytes() if request.timing_cache and request.timing_cache.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=False)
    profile = builder.create_optimization_profile()
    profile.set_shape(request.profile.input, request.profile.min, request.profile.opt, request.profile.max)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineError(f"{request.onnx}: TensorRT failed to build a {request.precision} engine")
    request.engine.parent.mkdir(parents=True, exist_ok=True)
    request.engine.write_bytes(bytes(serialized))
    if request.timing_cache is not None:
        request.timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
    manifest = EngineManifest(
        tensorrt_version=target.tensorrt_version,
        gpu_name=target.gpu_name,
        compute_capability=target.compute_capability,
        precision=request.precision,
        typing=mode,
        profiles=[request.profile],
        source_onnx=request.onnx.name,
        source_onnx_sha256=sha256_of(request.onnx),
        engine_sha256=sha256_of(request.engine),
        workspace_mib=request.workspace_mib,
        builder="python-api",
        built_at=datetime.now(UTC),
    )
    manifest_path(request.engine).write_text(manifest.model_dump_json(indent=2))
    return manifest


def _manifest_template(request: EngineRequest, typing: Typing, root: Path) -> str:
    """The manifest as JSON with ``@VERSION@`` / ``@GPU@`` / ``@CC@`` / ``@ENGINE_SHA@`` for the script to fill."""
    placeholder = EngineManifest(
        tensorrt_version="@VERSION@",
        gpu_name="@GPU@",
        compute_capability="@CC@",
        precision=request.precision,
        typing=typing,
        profiles=[request.profile],
        source_onnx=request.onnx.name,
        source_onnx_sha256=sha256_of(root / request.onnx),
        engine_sha256="@ENGINE_SHA@",
        workspace_mib=request.workspace_mib,
        builder="trtexec",
        built_at=datetime(1970, 1, 1, tzinfo=UTC),
    )
    data = json.loads(placeholder.model_dump_json())
    data["built_at"] = "@BUILT_AT@"
    return json.dumps(data)


def build_script(
    requests: Sequence[EngineRequest],
    root: Path,
    version: TensorRTVersion,
    typing: Typing | None = None,
    trtexec: str = CONTAINER_TRTEXEC,
) -> str:
    """A bash script that builds every request with ``trtexec`` and writes each engine's manifest.

    Paths in ``requests`` are relative to ``root`` (the export directory), where the script runs.
    ``version`` is the TensorRT of the serving container; the script refuses to run under another.
    """
    mode = resolve_typing(version, typing)
    lines = [
        "#!/usr/bin/env bash",
        "# Builds TensorRT engines inside the Triton serving container, so engines match its TensorRT:",
        f'#   docker run --rm --gpus all -v "$PWD":/export -w /export {TRITON_IMAGE} bash engines/build_engines.sh',
        "set -euo pipefail",
        'cd "$(dirname "$0")/.."',
        f'TRTEXEC="${{TRTEXEC:-{trtexec}}}"',
        f'EXPECTED_TRT="{version}"',
        "",
        "build() {",
        '  local precision="$1" engine="$2" manifest="$3" template="$4"; shift 4',
        '  local log="${engine%.plan}.build.log"',
        '  "$TRTEXEC" "$@" 2>&1 | tee "$log"',
        "  local number version gpu cc sha",
        "  number=$(grep -o 'TensorRT v[0-9]*' \"$log\" | head -n 1 | tr -dc '0-9')",
        '  version="$((number / 10000)).$((number / 100 % 100)).$((number % 100))"',
        '  if [ "$version" != "$EXPECTED_TRT" ]; then',
        '    echo "TensorRT $version in this container, but the engines were planned for $EXPECTED_TRT" >&2',
        "    exit 1",
        "  fi",
        "  IFS=, read -r gpu cc < <(nvidia-smi --query-gpu=name,compute_cap --format=csv,noheader | head -n 1)",
        '  gpu=$(echo "$gpu" | xargs); cc=$(echo "$cc" | xargs)',
        "  sha=$(sha256sum \"$engine\" | cut -d ' ' -f 1)",
        '  echo "$template" | sed -e "s|@VERSION@|$version|" -e "s|@GPU@|$gpu|" -e "s|@CC@|$cc|" \\',
        '    -e "s|@ENGINE_SHA@|$sha|" -e "s|@BUILT_AT@|$(date -u +%Y-%m-%dT%H:%M:%SZ)|" > "$manifest"',
        "}",
        "",
    ]
    for request in requests:
        command = trtexec_command(request, version, mode, trtexec="$TRTEXEC")
        arguments = " ".join(shlex.quote(arg) for arg in command[1:])
        template = _manifest_template(request, mode, root)
        lines.append(
            f"build {request.precision} {shlex.quote(str(request.engine))} "
            f"{shlex.quote(str(manifest_path(request.engine)))} {shlex.quote(template)} {arguments}"
        )
    return "\n".join(lines) + "\n"

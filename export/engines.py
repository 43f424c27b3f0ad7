"""The GPU repository's engine step: TensorRT plans from the published ONNX repository.

Runs inside the Triton image (``pastiche-engines``), on the GPU that will serve, with that
image's ``trtexec``, so every plan is built by the TensorRT that deserializes it. For each
served version of each style in the ONNX repository it writes, into the GPU repository:

- ``<style>/<version>/model_sm<major><minor>.plan``: the plan for this GPU's compute capability
  (a repository is shared by every GPU type of a fleet; Triton picks the file through
  ``cc_model_filenames``);
- ``<style>/<version>/model_sm<major><minor>.plan.json``: its :class:`EngineManifest`, written
  after the plan so that a manifest always describes a complete plan;
- ``<style>/config.pbtxt``: the ``tensorrt_plan`` config (same batching and versions as the ONNX one).

A plan whose manifest matches (TensorRT version, GPU, source ONNX sha256, plan sha256) is kept;
one that does not is refused and reported, never silently replaced: plans are immutable per
repository (the repository is named for the Triton tag, version folders are never reused).

Only light packages load here (no torch / onnxruntime): the Triton image installs
``deploy/docker/triton-engines-requirements.txt`` alone.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from deploy.model_store import ModelStore
from deploy.repository import (
    ServingPolicy,
    Target,
    build_config,
    parse_config,
    plan_filename,
    render_config,
    served_versions,
)
from export.tensorrt import (
    EngineError,
    EngineManifest,
    EngineRequest,
    EngineTarget,
    ServingLimits,
    TensorRTVersion,
    Typing,
    check_manifest,
    derive_profile,
    manifest_path,
    resolve_typing,
    sha256_of,
    trtexec_command,
)
from pastiche.contract import INTERNAL_MODEL_PREFIX, StyleMetadata

SOURCE_MODEL = "model.onnx"
CONFIG = "config.pbtxt"
BUILD_LOCK_TIMEOUT_S = 3600.0
"""Several Triton pods may start together; the later ones wait for the first one's build, then skip."""

_BANNER = re.compile(r"TensorRT v(\d{5,})")
_DOTTED = re.compile(r"TensorRT(?:\s+version)?[:\s]+v?(\d+\.\d+(?:\.\d+)*)", re.IGNORECASE)


def parse_trtexec_version(output: str) -> TensorRTVersion:
    """The TensorRT version in ``trtexec`` output: its ``[TensorRT v100500]`` banner or a dotted version."""
    match = _BANNER.search(output) or _DOTTED.search(output)
    if match is None:
        raise EngineError("trtexec printed no TensorRT version (expected a '[TensorRT v100500]' banner)")
    return TensorRTVersion.parse(match.group(1))


def trtexec_version(trtexec: str) -> TensorRTVersion:
    """Ask ``trtexec --version`` which TensorRT it is (trtexec prints its banner for any invocation)."""
    try:
        result = subprocess.run([trtexec, "--version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        raise EngineError(f"cannot run {trtexec}: {error}") from None
    return parse_trtexec_version(result.stdout + result.stderr)


def plan_key(style: str, version: int, compute_capability: str) -> str:
    """Repository key of a style version's plan for one compute capability."""
    return f"{style}/{version}/{plan_filename(compute_capability)}"


def manifest_key(style: str, version: int, compute_capability: str) -> str:
    """Repository key of that plan's manifest (``<plan>.json``, as :func:`manifest_path` names it)."""
    return f"{style}/{version}/{manifest_path(Path(plan_filename(compute_capability))).name}"


@dataclass(frozen=True)
class SourceStyle:
    """A style of the ONNX repository: what its engines are built from."""

    name: str
    metadata: StyleMetadata
    config_text: str
    versions: tuple[int, ...]
    pinned: bool
    """The ONNX config lists its versions (``specific``); the GPU config then lists the same ones."""


def read_source_style(store: ModelStore, style: str) -> SourceStyle:
    """A style's metadata and served versions, from its ``config.pbtxt`` in the ONNX repository."""
    text = store.read(f"{style}/{CONFIG}")
    if text is None:
        raise EngineError(f"{style}: the ONNX repository has no {style}/{CONFIG}")
    try:
        config = parse_config(text.decode())
    except Exception as error:  # text_format raises ParseError, decode UnicodeDecodeError
        raise EngineError(f"{style}/{CONFIG} is not a valid Triton config: {error}") from None
    parameters = {key: value.string_value for key, value in config.parameters.items()}
    versions = tuple(served_versions(config, store.versions(style)))
    if not versions:
        raise EngineError(f"{style}: no served version in the ONNX repository")
    if "title" in parameters:
        metadata = StyleMetadata.from_parameters(parameters)
    else:
        metadata = _onnx_metadata(store, style, versions[-1])
    return SourceStyle(
        name=style,
        metadata=metadata,
        config_text=text.decode(),
        versions=versions,
        pinned=config.version_policy.WhichOneof("policy_choice") == "specific",
    )


def _onnx_metadata(store: ModelStore, style: str, version: int) -> StyleMetadata:
    """Fallback for configs without parameters: the ONNX model's own ``metadata_props``."""
    import onnx

    data = store.read(f"{style}/{version}/{SOURCE_MODEL}")
    if data is None:
        raise EngineError(f"{style}/{version}/{SOURCE_MODEL} is missing from the ONNX repository")
    model = onnx.load_model_from_string(data)
    props = {prop.key: prop.value for prop in model.metadata_props}
    if not any(key.startswith("pastiche.") for key in props):
        raise EngineError(f"{style}/{version}/{SOURCE_MODEL} carries no pastiche.* metadata and its config no parameters")
    return StyleMetadata.from_onnx_metadata(props)


def gpu_config_text(
    source: SourceStyle, versions: Sequence[int], compute_capabilities: Iterable[str], existing: str | None
) -> str:
    """The GPU repository's ``config.pbtxt``: the ONNX config's batching, this repository's plan files.

    ``cc_model_filenames`` keeps the capabilities already listed in ``existing`` (other GPU types of
    the fleet built into this repository) and adds ``compute_capabilities``.
    """
    limits = ServingLimits.from_triton_config(source.config_text)
    onnx_config = parse_config(source.config_text)
    known = set(compute_capabilities)
    if existing is not None:
        known |= set(parse_config(existing).cc_model_filenames)
    policy = ServingPolicy(
        max_batch_size=limits.max_batch_size,
        preferred_batch_sizes=tuple(onnx_config.dynamic_batching.preferred_batch_size),
        compute_capabilities=tuple(sorted(known)),
    )
    config = build_config(source.name, source.metadata, Target.GPU, policy, tuple(versions) if source.pinned else ())
    return render_config(config)


@dataclass
class StepReport:
    """What a build or verify did; ``mismatches`` non-empty means the step failed."""

    built: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _read_manifest(store: ModelStore, key: str) -> EngineManifest | None | str:
    """The manifest at ``key``; None when absent; a problem string when unreadable."""
    data = store.read(key)
    if data is None:
        return None
    try:
        return EngineManifest.model_validate_json(data)
    except ValidationError as error:
        return f"unreadable manifest {key}: {error.error_count()} invalid field(s)"


def plan_problems(store: ModelStore, style: str, version: int, target: EngineTarget, onnx_sha256: str | None) -> list[str] | None:
    """Why the plan of ``style/version`` for ``target`` cannot be served; [] when it fits; None when absent."""
    manifest = _read_manifest(store, manifest_key(style, version, target.compute_capability))
    if manifest is None:
        return None
    if isinstance(manifest, str):
        return [manifest]
    plan = store.read(plan_key(style, version, target.compute_capability))
    if plan is None:
        return ["the manifest's plan file is missing"]
    return check_manifest(
        manifest, target, onnx_sha256=onnx_sha256, engine_sha256=hashlib.sha256(plan).hexdigest()
    )


Builder = Callable[[EngineRequest], None]
"""Builds one request's plan file (``trtexec`` in production); raises :class:`EngineError` on failure."""


def trtexec_builder(trtexec: str, version: TensorRTVersion, typing: Typing, on_line: Callable[[str], None]) -> Builder:
    """A :data:`Builder` running this image's ``trtexec``, streaming its output to ``on_line``.

    The output's banner must name ``version``: a plan is only valid for the TensorRT that built it.
    """

    def build(request: EngineRequest) -> None:
        command = trtexec_command(request, version, typing, trtexec=trtexec)
        lines: list[str] = []
        try:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        except OSError as error:
            raise EngineError(f"cannot run {trtexec}: {error}") from None
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            on_line(lines[-1])
        code = process.wait()
        output = "\n".join(lines)
        if code != 0 or not request.engine.is_file():
            tail = "\n".join(lines[-20:])
            raise EngineError(f"trtexec failed (exit {code}) for {request.onnx.name}:\n{tail}")
        built_by = parse_trtexec_version(output)
        if built_by != version:
            raise EngineError(f"trtexec ran TensorRT {built_by}, but TensorRT {version} was expected")

    return build


def build_repository(
    source: ModelStore,
    repository: ModelStore,
    target: EngineTarget,
    build: Builder,
    models: Sequence[str] = (),
    typing: Typing | None = None,
    timing_cache: Path | None = None,
    on_event: Callable[[str], None] = lambda message: None,
) -> StepReport:
    """Build the missing plans of ``source``'s styles into ``repository`` for ``target``; keep matching ones.

    Mismatched plans are refused (listed in the report, never overwritten); a style's config is
    written for the versions that have a fitting plan.
    """
    version = TensorRTVersion.parse(target.tensorrt_version)
    mode = resolve_typing(version, typing)
    available = [style for style in source.styles() if not style.startswith(INTERNAL_MODEL_PREFIX)]
    unknown = sorted(set(models) - set(available))
    if unknown:
        raise EngineError(f"not in the ONNX repository: {', '.join(unknown)} (it has: {', '.join(available) or 'none'})")
    report = StepReport()
    for style in [s for s in available if not models or s in models]:
        try:
            source_style = read_source_style(source, style)
        except EngineError as error:
            report.mismatches.append(str(error))
            continue
        with repository.lock(style, timeout=BUILD_LOCK_TIMEOUT_S):
            ready = _build_style(source, repository, source_style, target, build, mode, timing_cache, report, on_event)
            if ready:
                existing = repository.read(f"{style}/{CONFIG}")
                text = gpu_config_text(
                    source_style, ready, [target.compute_capability], existing.decode() if existing else None
                )
                repository.write(f"{style}/{CONFIG}", text.encode())
    return report


def _build_style(
    source: ModelStore,
    repository: ModelStore,
    style: SourceStyle,
    target: EngineTarget,
    build: Builder,
    typing: Typing,
    timing_cache: Path | None,
    report: StepReport,
    on_event: Callable[[str], None],
) -> list[int]:
    """Build or keep each served version's plan; returns the versions that now have a fitting plan."""
    ready = []
    for version in style.versions:
        label = f"{style.name}/{version}"
        onnx_bytes = source.read(f"{style.name}/{version}/{SOURCE_MODEL}")
        if onnx_bytes is None:
            report.mismatches.append(f"{label}: {SOURCE_MODEL} is missing from the ONNX repository")
            continue
        onnx_sha256 = hashlib.sha256(onnx_bytes).hexdigest()
        problems = plan_problems(repository, style.name, version, target, onnx_sha256)
        if problems == []:
            report.kept.append(label)
            on_event(f"{label}: plan matches, kept")
            ready.append(version)
            continue
        if problems is not None:
            report.mismatches.append(f"{label} ({plan_filename(target.compute_capability)}): " + "; ".join(problems))
            continue
        on_event(f"{label}: building {style.metadata.precision} plan for {target.gpu_name}")
        try:
            manifest, plan = _build_plan(onnx_bytes, style, target, build, typing, timing_cache)
        except EngineError as error:
            report.mismatches.append(f"{label}: build failed: {error}")
            continue
        repository.write(plan_key(style.name, version, target.compute_capability), plan)
        repository.write(manifest_key(style.name, version, target.compute_capability), manifest.model_dump_json(indent=2).encode())
        report.built.append(label)
        ready.append(version)
    return ready


def _build_plan(
    onnx_bytes: bytes,
    style: SourceStyle,
    target: EngineTarget,
    build: Builder,
    typing: Typing,
    timing_cache: Path | None,
) -> tuple[EngineManifest, bytes]:
    """Build one plan in a scratch directory; returns its manifest and bytes."""
    limits = ServingLimits.from_triton_config(style.config_text)
    profile = derive_profile(style.metadata, limits)
    precision = style.metadata.precision
    if precision not in ("fp32", "fp16", "int8"):
        raise EngineError(f"unknown precision {precision!r} in the style's metadata")
    with tempfile.TemporaryDirectory(prefix="pastiche-engine-") as scratch:
        onnx_path = Path(scratch) / SOURCE_MODEL
        onnx_path.write_bytes(onnx_bytes)
        request = EngineRequest(
            onnx=onnx_path,
            engine=Path(scratch) / plan_filename(target.compute_capability),
            precision=precision,
            profile=profile,
            timing_cache=timing_cache,
        )
        build(request)
        manifest = EngineManifest(
            tensorrt_version=target.tensorrt_version,
            gpu_name=target.gpu_name,
            compute_capability=target.compute_capability,
            precision=precision,
            typing=typing,
            profiles=[profile],
            source_onnx=f"{style.name}/{SOURCE_MODEL}",
            source_onnx_sha256=sha256_of(onnx_path),
            engine_sha256=sha256_of(request.engine),
            workspace_mib=request.workspace_mib,
            builder="trtexec",
            built_at=datetime.now(UTC),
        )
        return manifest, request.engine.read_bytes()


def verify_repository(repository: ModelStore, target: EngineTarget, models: Sequence[str] = ()) -> StepReport:
    """Check that every served version has a plan for ``target`` whose manifest matches it.

    Plans for other compute capabilities (other GPU types of the fleet) must still name
    ``target``'s TensorRT: the repository belongs to one Triton release.
    """
    report = StepReport()
    styles = [s for s in repository.styles() if not s.startswith(INTERNAL_MODEL_PREFIX)]
    unknown = sorted(set(models) - set(styles))
    if unknown:
        raise EngineError(f"not in the engine repository: {', '.join(unknown)}")
    if not styles:
        report.mismatches.append("the engine repository holds no model")
    for style in [s for s in styles if not models or s in models]:
        text = repository.read(f"{style}/{CONFIG}")
        if text is None:
            report.mismatches.append(f"{style}: no {CONFIG}")
            continue
        config = parse_config(text.decode())
        if config.platform != "tensorrt_plan":
            report.mismatches.append(f"{style}: platform is {config.platform or config.backend!r}, not tensorrt_plan")
            continue
        if target.compute_capability not in config.cc_model_filenames:
            report.mismatches.append(f"{style}: no plan for compute capability {target.compute_capability} ({target.gpu_name})")
            continue
        for version in served_versions(config, repository.versions(style)):
            label = f"{style}/{version}"
            problems = plan_problems(repository, style, version, target, onnx_sha256=None)
            if problems is None:
                report.mismatches.append(f"{label}: no {plan_filename(target.compute_capability)} manifest")
            elif problems:
                report.mismatches.append(f"{label}: " + "; ".join(problems))
            else:
                report.kept.append(label)
            for capability in sorted(set(config.cc_model_filenames) - {target.compute_capability}):
                other = _read_manifest(repository, manifest_key(style, version, capability))
                if isinstance(other, EngineManifest) and (
                    TensorRTVersion.parse(other.tensorrt_version) != TensorRTVersion.parse(target.tensorrt_version)
                ):
                    report.mismatches.append(
                        f"{label} ({plan_filename(capability)}): built with TensorRT {other.tensorrt_version}, "
                        f"this image runs {target.tensorrt_version}"
                    )
    return report

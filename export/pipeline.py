"""The export pipeline: checkpoint → FP32 ONNX (parity-checked) → FP16 / INT8 variants → gates → report.

Files written to the output directory:

- ``model.onnx`` (FP32), ``model.fp16.onnx``, ``model.int8.onnx``: only variants that passed
  their gates; a failing variant goes to ``rejected/`` so it can be inspected, never published;
- ``report.json`` and ``report.md``: the measurements (see :mod:`export.report`);
- ``comparison.png``: each variant's output on the evaluation photos, with amplified differences;
- ``calibration.json``: the INT8 activation ranges (onnxruntime's calibration cache format);
- ``engines/``: TensorRT build script, and engines with manifests where a GPU is present.
"""

from __future__ import annotations

import dataclasses
import shlex
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx

from export.checkpoint import LoadedGenerator, ServingOptions, load_generator
from export.fp16 import OVERFLOW_LIMIT, convert_fp16, plan_fp16
from export.gates import GateThresholds, check_gates, score_batch, summarize
from export.latency import LatencySettings, cpu_session, describe_machine, measure_latency
from export.onnx_export import describe_graph, export_onnx, set_precision
from export.parity import Shape, check_parity, default_parity_shapes, round_up
from export.photos import Photo, batch_of, calibration_photos, evaluation_photos, folder_photos
from export.quantize import QuantizeSettings, quantize_int8
from export.report import (
    CalibrationInfo,
    CheckpointInfo,
    EngineInfo,
    EvaluationInfo,
    ExportReport,
    Precision,
    VariantReport,
    comparison_figure,
    render_markdown,
)
from export.tensorrt import (
    DEFAULT_WORKSPACE_MIB,
    EngineRequest,
    ServingLimits,
    TensorRTVersion,
    Typing,
    build_engine,
    build_script,
    derive_profile,
    manifest_path,
    sha256_of,
    tensorrt_unavailable_reason,
    trtexec_command,
)
from pastiche.contract import INPUT_NAME, StyleMetadata

FILES: dict[Precision, str] = {"fp32": "model.onnx", "fp16": "model.fp16.onnx", "int8": "model.int8.onnx"}
OUTPUTS = (*FILES.values(), "report.json", "report.md", "comparison.png", "calibration.json", "rejected", "engines")
OVERFLOW_PROBE_SIDE = 256
"""FP16 overflow is measured at no more than this side: activation magnitudes barely depend on size."""


class ExportFailed(Exception):
    """The FP32 export itself is wrong (e.g. parity with PyTorch failed); nothing is published."""


@dataclass(frozen=True)
class EngineSettings:
    """TensorRT engines to plan (always) and build (where a GPU and ``tensorrt`` are present)."""

    limits: ServingLimits = field(default_factory=ServingLimits)
    tensorrt_version: str = "10.5.0"
    """TensorRT of the serving container the build script targets (Triton 24.10 ships 10.5)."""
    typing: Typing | None = None
    workspace_mib: int = DEFAULT_WORKSPACE_MIB
    build_here: bool = True


@dataclass(frozen=True)
class ExportSettings:
    """Everything ``pastiche export`` can be told."""

    family: str | None = None
    serving: ServingOptions = field(default_factory=ServingOptions)
    entry: str | None = None
    prefix: str | None = None
    trust_pickle: bool = False
    title: str | None = None
    description: str = ""
    max_side: int = 1024
    preview_key: str = ""
    variants: tuple[Precision, ...] = ("fp16", "int8")
    eval_folder: Path | None = None
    eval_limit: int | None = None
    eval_side: int | None = None
    """Square side of evaluation and calibration images; defaults to the family's preferred side."""
    calibration_folder: Path | None = None
    calibration_limit: int | None = None
    quantize: QuantizeSettings = field(default_factory=QuantizeSettings)
    overflow_limit: float = OVERFLOW_LIMIT
    thresholds: GateThresholds = field(default_factory=GateThresholds)
    parity_shapes: tuple[Shape, ...] | None = None
    parity_tolerance: int = 1
    latency: LatencySettings = field(default_factory=LatencySettings)
    engines: EngineSettings | None = None
    pictures: bool = True


@dataclass
class ExportResult:
    """The report and where everything went."""

    report: ExportReport
    directory: Path
    files: dict[str, Path] = field(default_factory=dict)


Step = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def style_metadata(loaded: LoadedGenerator, settings: ExportSettings) -> StyleMetadata:
    """The metadata stored in every variant: sizes from the family, texts from the settings."""
    spec = loaded.spec
    max_side = settings.max_side // spec.size_multiple * spec.size_multiple
    if max_side < spec.preferred_side:
        raise ExportFailed(
            f"--max-side {settings.max_side} is below the family's preferred side {spec.preferred_side} "
            f"(sides must be multiples of {spec.size_multiple})"
        )
    source = loaded.source.stem if loaded.source else spec.name
    return StyleMetadata(
        title=settings.title or source,
        description=settings.description,
        architecture=spec.name,
        precision="fp32",
        size_multiple=spec.size_multiple,
        preferred_side=spec.preferred_side,
        max_side=max_side,
        preview_key=settings.preview_key,
    )


def _photos(folder: Path | None, limit: int | None, default: Callable[[int | None], list[Photo]]) -> list[Photo]:
    return folder_photos(folder, limit) if folder is not None else default(limit)


def _run(path: Path, images: np.ndarray) -> np.ndarray:
    session = cpu_session(path)
    return np.concatenate([session.run(None, {INPUT_NAME: image[None]})[0] for image in images])


def _prepare_directory(directory: Path) -> None:
    # Stale files from an earlier run must never look publishable.
    for name in OUTPUTS:
        target = directory / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def _engines(
    settings: EngineSettings, metadata: StyleMetadata, directory: Path, published: Sequence[Precision]
) -> list[EngineInfo]:
    profile = derive_profile(metadata, settings.limits)
    version = TensorRTVersion.parse(settings.tensorrt_version)
    requests = [
        EngineRequest(
            onnx=Path(FILES[precision]),
            engine=Path("engines") / f"model.{precision}.plan",
            precision=precision,
            profile=profile,
            workspace_mib=settings.workspace_mib,
            timing_cache=Path("engines") / "timing.cache",
        )
        for precision in published
    ]
    engines_dir = directory / "engines"
    engines_dir.mkdir(parents=True, exist_ok=True)
    script = engines_dir / "build_engines.sh"
    script.write_text(build_script(requests, directory, version, settings.typing))
    script.chmod(0o755)
    reason = tensorrt_unavailable_reason() if settings.build_here else "building here was not requested"
    infos = []
    for request in requests:
        command = shlex.join(trtexec_command(request, version, settings.typing))
        if reason is None:
            absolute = request.model_copy(
                update={
                    "onnx": directory / request.onnx,
                    "engine": directory / request.engine,
                    "timing_cache": directory / request.timing_cache if request.timing_cache else None,
                }
            )
            build_engine(absolute, settings.typing)
            infos.append(
                EngineInfo(
                    precision=request.precision,
                    built=True,
                    engine=str(request.engine),
                    manifest=str(manifest_path(request.engine)),
                    command=command,
                )
            )
        else:
            infos.append(EngineInfo(precision=request.precision, built=False, command=command, reason=reason))
    return infos


def run_export(
    checkpoint: Path, directory: Path, settings: ExportSettings = ExportSettings(), step: Step = _quiet
) -> ExportResult:
    """Export ``checkpoint`` into ``directory``; see the module docstring for what is written.

    Raises :class:`export.checkpoint.CheckpointError` for unusable checkpoints and
    :class:`ExportFailed` when the FP32 graph does not match PyTorch.
    """
    step("Loading checkpoint")
    loaded = load_generator(
        checkpoint,
        settings.family,
        options=settings.serving,
        entry=settings.entry,
        prefix=settings.prefix,
        trust_pickle=settings.trust_pickle,
    )
    spec = loaded.spec
    metadata = style_metadata(loaded, settings)
    side = round_up(settings.eval_side or spec.preferred_side, spec.size_multiple)
    eval_photos = _photos(settings.eval_folder, settings.eval_limit, evaluation_photos)
    cal_photos = _photos(settings.calibration_folder, settings.calibration_limit, calibration_photos)
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".staging-") as staging_name:
        staging = Path(staging_name)
        paths: dict[Precision, Path] = {"fp32": staging / FILES["fp32"]}

        step("Exporting FP32 ONNX")
        export_onnx(loaded.module, spec.value_range, paths["fp32"], metadata)
        graph = describe_graph(paths["fp32"])

        step("Checking ONNX Runtime parity with PyTorch")
        shapes = settings.parity_shapes or tuple(default_parity_shapes(spec.size_multiple))
        parity = check_parity(
            loaded.module, spec.value_range, paths["fp32"], eval_photos, shapes, settings.parity_tolerance
        )
        if not parity.passed:
            worst = max(parity.cases, key=lambda case: case.max_abs_diff)
            raise ExportFailed(
                f"ONNX Runtime differs from PyTorch by up to {worst.max_abs_diff} levels at "
                f"{worst.height}x{worst.width} batch {worst.batch} (tolerance {settings.parity_tolerance})"
            )

        details: dict[Precision, dict[str, object]] = {}
        if "fp16" in settings.variants:
            step("Converting to FP16 (normalization and measured overflow kept in FP32)")
            probe_side = round_up(min(side, OVERFLOW_PROBE_SIDE), spec.size_multiple)
            model = onnx.load(paths["fp32"])
            plan = plan_fp16(model, [batch_of([p], probe_side) for p in cal_photos[:4]], settings.overflow_limit)
            paths["fp16"] = staging / FILES["fp16"]
            onnx.save(set_precision(convert_fp16(model, plan), "fp16"), paths["fp16"])
            details["fp16"] = dataclasses.asdict(plan) | {"probe_side": probe_side}

        quantize = dataclasses.replace(settings.quantize, side=side)
        if "int8" in settings.variants:
            step(f"Quantizing to INT8 ({quantize.calibration.value} calibration on {len(cal_photos)} photos)")
            paths["int8"] = staging / FILES["int8"]
            summary = quantize_int8(paths["fp32"], paths["int8"], cal_photos, quantize, staging / "calibration.json")
            onnx.save(set_precision(onnx.load(paths["int8"]), "int8"), paths["int8"])
            details["int8"] = dataclasses.asdict(summary)

        step(f"Scoring variants against FP32 on {len(eval_photos)} held-out photos")
        names = [photo.name for photo in eval_photos]
        inputs = batch_of(eval_photos, side)
        outputs = {precision: _run(path, inputs) for precision, path in paths.items()}
        variants: list[VariantReport] = []
        for precision, path in paths.items():
            if precision == "fp32":
                variants.append(
                    VariantReport(precision="fp32", publishable=True, file=None, size_bytes=path.stat().st_size)
                )
                continue
            scores = score_batch(names, outputs["fp32"], outputs[precision])
            gates = check_gates(scores, settings.thresholds.for_precision(precision))
            variants.append(
                VariantReport(
                    precision=precision,
                    publishable=all(g.passed for g in gates),
                    file=None,
                    size_bytes=path.stat().st_size,
                    psnr=summarize(scores, "psnr"),
                    ssim=summarize(scores, "ssim"),
                    images=scores,
                    gates=gates,
                    details=details.get(precision, {}),
                )
            )

        latency_side = round_up(settings.latency.side or spec.preferred_side, spec.size_multiple)
        step(f"Timing ONNX Runtime on CPU at {latency_side}x{latency_side}, batch {settings.latency.batch}")
        timing_input = batch_of(eval_photos, latency_side, settings.latency.batch)
        timings = measure_latency(paths, timing_input, settings.latency)
        variants = [v.model_copy(update={"latency": timings[v.precision]}) for v in variants]

        step("Writing models and report")
        _prepare_directory(directory)
        files: dict[str, Path] = {}
        for index, variant in enumerate(variants):
            name = FILES[variant.precision]
            target = directory / name if variant.publishable else directory / "rejected" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(paths[variant.precision], target)
            relative = str(target.relative_to(directory))
            variants[index] = variant.model_copy(update={"file": relative})
            files[relative] = target
        if (staging / "calibration.json").exists():
            shutil.move(staging / "calibration.json", directory / "calibration.json")
            # onnxruntime writes the cache through mkstemp (mode 600); it is a plain artifact like the models.
            (directory / "calibration.json").chmod(0o644)
            files["calibration.json"] = directory / "calibration.json"

    published = [v.precision for v in variants if v.publishable]
    engines: list[EngineInfo] = []
    if settings.engines is not None:
        step("Planning TensorRT engines")
        engines = _engines(settings.engines, metadata, directory, published)
        files["engines/build_engines.sh"] = directory / "engines" / "build_engines.sh"

    report = ExportReport(
        created=datetime.now(UTC),
        checkpoint=CheckpointInfo(
            path=str(checkpoint),
            sha256=sha256_of(checkpoint),
            family=spec.name,
            origin=spec.origin,
            config=dataclasses.asdict(loaded.config),
            notes=list(loaded.notes),
            dropped_keys=list(loaded.dropped_keys),
        ),
        metadata=metadata.to_parameters(),
        graph=graph,
        parity=parity,
        evaluation=EvaluationInfo(
            source=str(settings.eval_folder or "scikit-image bundled photographs (evaluation split)"),
            photos=names,
            side=side,
        ),
        calibration=CalibrationInfo(
            source=str(settings.calibration_folder or "scikit-image bundled photographs (calibration split)"),
            photos=[photo.name for photo in cal_photos],
            side=side,
            method=quantize.calibration.value,
        )
        if "int8" in settings.variants
        else None,
        thresholds=settings.thresholds,
        latency_settings=settings.latency,
        machine=describe_machine(),
        variants=variants,
        engines=engines,
    )
    (directory / "report.json").write_text(report.model_dump_json(indent=2))
    (directory / "report.md").write_text(render_markdown(report))
    files["report.json"] = directory / "report.json"
    files["report.md"] = directory / "report.md"
    if settings.pictures:
        files["comparison.png"] = comparison_figure(
            directory / "comparison.png", names, inputs, {p: outputs[p] for p in outputs}
        )
    return ExportResult(report=report, directory=directory, files=files)

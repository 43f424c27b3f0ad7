"""What publishing puts in the repository: a gated ONNX file, its metadata, and smoke-test references.

A checkpoint goes through the export stage (``export.pipeline.run_export``: family detection,
PyTorch parity, the requested FP16/INT8 variant and its quality gates); an already exported ONNX
file is checked against the served contract. Either way the reference outputs for the golden images are computed in-process with
ONNX Runtime from the exact file that will be published, so the smoke test compares what Triton
serves with what was gated.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from PIL import Image

from export.onnx_export import read_metadata
from pastiche.contract import CHANNELS, INPUT_NAME, OUTPUT_NAME, StyleMetadata

PRECISIONS = ("fp32", "fp16", "int8")

GOLDEN_PHOTOS = ("astronaut", "chelsea", "coffee")
"""Real photographs bundled with scikit-image, used as the smoke test's inputs."""

SMOKE_TOLERANCE = {"fp32": 2, "fp16": 4, "int8": 4}
"""Largest per-pixel difference (uint8 levels) allowed between Triton and the in-process reference."""


class ArtifactError(RuntimeError):
    """The source cannot be published: unreadable, off-contract, or failing a gate."""


@dataclass(frozen=True)
class Artifact:
    """A gated ONNX file ready to be written as a new version."""

    onnx_path: Path
    metadata: StyleMetadata
    source: str
    gates: dict[str, str] = field(default_factory=dict)

    @property
    def precision(self) -> str:
        return self.metadata.precision

    def sha256(self) -> str:
        return hashlib.sha256(self.onnx_path.read_bytes()).hexdigest()


def golden_images(size_multiple: int, side: int = 64) -> np.ndarray:
    """``[len(GOLDEN_PHOTOS), side, side, 3]`` uint8: centre crops of real photos, resized."""
    from skimage import data

    side -= side % size_multiple
    images = []
    for name in GOLDEN_PHOTOS:
        photo = getattr(data, name)()
        height, width = photo.shape[:2]
        crop = min(height, width)
        top, left = (height - crop) // 2, (width - crop) // 2
        square = Image.fromarray(photo[top : top + crop, left : left + crop])
        images.append(np.asarray(square.resize((side, side), Image.Resampling.BILINEAR), dtype=np.uint8))
    return np.stack(images)


def onnx_outputs(onnx_path: Path, images: np.ndarray) -> np.ndarray:
    """Run the ONNX file on ``images`` in this process (one thread: the references must be cheap)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    return session.run([OUTPUT_NAME], {INPUT_NAME: images})[0]


def contract_problems(model: onnx.ModelProto) -> list[str]:
    """Ways an ONNX model breaks the served contract (names, uint8, rank 4, 3 channels)."""
    problems = []
    for kind, values, name in (("input", model.graph.input, INPUT_NAME), ("output", model.graph.output, OUTPUT_NAME)):
        if [v.name for v in values] != [name]:
            problems.append(f"{kind} must be exactly '{name}', got {[v.name for v in values]}")
            continue
        tensor = values[0].type.tensor_type
        if tensor.elem_type != onnx.TensorProto.UINT8:
            problems.append(f"{kind} '{name}' must be uint8")
        dims = tensor.shape.dim
        if len(dims) != 4 or dims[3].dim_value not in (0, CHANNELS):
            problems.append(f"{kind} '{name}' must be [N, H, W, 3]")
    return problems


def gate_onnx(onnx_path: Path, metadata: StyleMetadata) -> dict[str, str]:
    """Gates every published file passes: contract, golden images run, shapes preserved."""
    try:
        model = onnx.load(onnx_path)
        onnx.checker.check_model(model)
    except Exception as error:  # onnx raises several unrelated types for unreadable files
        raise ArtifactError(f"{onnx_path} is not a valid ONNX model: {error}") from None
    problems = contract_problems(model)
    if problems:
        raise ArtifactError(f"{onnx_path} breaks the served contract: " + "; ".join(problems))
    images = golden_images(metadata.size_multiple)
    try:
        outputs = onnx_outputs(onnx_path, images)
    except Exception as error:  # any ORT failure means the file cannot be served
        raise ArtifactError(f"{onnx_path} fails in ONNX Runtime on the golden images: {error}") from None
    if outputs.shape != images.shape or outputs.dtype != np.uint8:
        raise ArtifactError(f"{onnx_path} returned {outputs.dtype}{list(outputs.shape)} for {list(images.shape)} uint8 input")
    return {"contract": "pass", "golden_images": f"pass ({len(images)} photos)"}


def onnx_artifact(onnx_path: Path, precision: str | None) -> Artifact:
    """An exported ONNX file, checked against the contract and its own metadata."""
    if not onnx_path.is_file():
        raise ArtifactError(f"{onnx_path} does not exist")
    try:
        metadata = read_metadata(onnx_path)
    except Exception as error:  # unreadable protobuf
        raise ArtifactError(f"{onnx_path} is not a readable ONNX file: {error}") from None
    if not metadata.title:
        raise ArtifactError(f"{onnx_path} carries no pastiche.* metadata; export it with `pastiche export` first")
    if precision and precision != metadata.precision:
        raise ArtifactError(
            f"{onnx_path} is a {metadata.precision} export but --precision {precision} was asked; "
            "export that precision first or drop --precision"
        )
    return Artifact(onnx_path, metadata, str(onnx_path), gate_onnx(onnx_path, metadata))


def checkpoint_artifact(checkpoint: Path, style: str, precision: str, workdir: Path) -> Artifact:
    """Run the export stage on a checkpoint and take its ``precision`` variant, gates included.

    ``export.pipeline.run_export`` detects the family, exports FP32 with PyTorch parity, builds
    the requested FP16/INT8 variant and scores it against FP32 on held-out photos. A variant that
    fails its gates is not publishable, and the reason names the gate and by how much.
    """
    from export.checkpoint import CheckpointError
    from export.pipeline import FILES, ExportFailed, ExportSettings, run_export

    variants = () if precision == "fp32" else (precision,)
    settings = ExportSettings(title=style, variants=variants, pictures=False)
    try:
        result = run_export(checkpoint, workdir / f"{style}-export", settings)
    except (CheckpointError, ExportFailed, OSError, ValueError) as error:
        raise ArtifactError(str(error)) from None
    report = result.report
    variant = next(v for v in report.variants if v.precision == precision)
    if not variant.publishable:
        failed = "; ".join(
            f"{g.metric} {g.measured:.3f} < {g.threshold} (by {-g.margin:.3f})" for g in variant.gates if not g.passed
        )
        raise ArtifactError(f"the {precision} variant failed its quality gates: {failed}")
    worst = max(case.max_abs_diff for case in report.parity.cases)
    gates = {"parity_vs_pytorch": f"pass (max {worst} levels)"}
    gates |= {f"{g.metric}_vs_fp32": f"pass ({g.measured:.3f} >= {g.threshold})" for g in variant.gates}
    onnx_path = result.directory / FILES[precision]  # type: ignore[index]
    return Artifact(onnx_path, read_metadata(onnx_path), str(checkpoint), gates)


def prepare_artifact(source: Path, style: str, precision: str | None, workdir: Path) -> Artifact:
    """Checkpoint or ONNX → gated :class:`Artifact`."""
    if precision is not None and precision not in PRECISIONS:
        raise ArtifactError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if source.suffix == ".onnx":
        return onnx_artifact(source, precision)
    if not source.is_file():
        raise ArtifactError(f"{source} does not exist")
    return checkpoint_artifact(source, style, precision or "fp32", workdir)

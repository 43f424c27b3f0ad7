"""What publishing puts in the repository: a gated ONNX file, its metadata, and smoke-test references.

A checkpoint is exported here through ``export`` (``export.checkpoint.load_generator`` +
``export.onnx_export.export_onnx``); an already exported ONNX file is checked against the served
contract. Either way the reference outputs for the golden images are computed in-process with
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

from export.onnx_export import export_onnx, read_metadata, torch_reference
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
    """Export a generator checkpoint to FP32 ONNX and gate it (parity against PyTorch included).

    FP16 and INT8 variants come from the export stage's converters; until they are wired in,
    other precisions are refused with a clear message rather than published unconverted.
    """
    try:
        from export.checkpoint import load_generator
    except ImportError:
        raise ArtifactError(
            "checkpoint export is not available in this build (export.checkpoint missing); "
            "publish an exported .onnx file instead"
        ) from None
    if precision != "fp32":
        raise ArtifactError(f"--precision {precision} from a checkpoint: export the {precision} ONNX first, then publish it")
    try:
        loaded = load_generator(checkpoint)
    except Exception as error:  # CheckpointError and friends carry readable messages
        raise ArtifactError(str(error)) from None
    spec = loaded.spec
    metadata = StyleMetadata(
        title=style,
        description=f"{spec.name} generator from {checkpoint.name}",
        architecture=spec.name,
        precision="fp32",
        size_multiple=spec.size_multiple,
        preferred_side=spec.preferred_side,
    )
    onnx_path = export_onnx(loaded.module, spec.value_range, workdir / f"{style}.onnx", metadata)
    gates = gate_onnx(onnx_path, metadata)
    images = golden_images(metadata.size_multiple)
    drift = int(np.abs(onnx_outputs(onnx_path, images).astype(np.int16) - torch_reference(loaded.module, spec.value_range, images)).max())
    if drift > 1:
        raise ArtifactError(f"ONNX export differs from PyTorch by {drift} levels on the golden images (gate: ≤ 1)")
    gates["parity_vs_pytorch"] = f"pass (max {drift} levels)"
    return Artifact(onnx_path, metadata, str(checkpoint), gates)


def prepare_artifact(source: Path, style: str, precision: str | None, workdir: Path) -> Artifact:
    """Checkpoint or ONNX → gated :class:`Artifact`."""
    if precision is not None and precision not in PRECISIONS:
        raise ArtifactError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if source.suffix == ".onnx":
        return onnx_artifact(source, precision)
    if not source.is_file():
        raise ArtifactError(f"{source} does not exist")
    return checkpoint_artifact(source, style, precision or "fp32", workdir)

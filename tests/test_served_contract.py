"""The exported ONNX honours the served contract and matches PyTorch to within one uint8 level."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from export.families import RESNET, build_seeded_resnet
from export.onnx_export import export_onnx, read_metadata, torch_reference
from pastiche.contract import INPUT_NAME, OUTPUT_NAME, StyleMetadata


def test_onnx_matches_pytorch_on_a_real_photo(tmp_path: Path, astronaut: np.ndarray) -> None:
    generator = build_seeded_resnet(ngf=8, n_blocks=2, seed=3)
    metadata = StyleMetadata(title="t", description="d", architecture="resnet")
    path = export_onnx(generator, RESNET.value_range, tmp_path / "model.onnx", metadata)
    session = ort.InferenceSession(str(path))
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.type, inp.shape[-1]) == (INPUT_NAME, "tensor(uint8)", 3)
    assert (out.name, out.type, out.shape[-1]) == (OUTPUT_NAME, "tensor(uint8)", 3)
    assert all(isinstance(dim, str) for dim in inp.shape[:3]), "N, H and W must be dynamic"

    for batch in (astronaut[np.newaxis, :128, :192], np.stack([astronaut[100:164, 50:114]] * 3)):
        onnx_out = session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(batch)})[0]
        torch_out = torch_reference(generator, RESNET.value_range, np.ascontiguousarray(batch))
        assert onnx_out.shape == batch.shape
        assert np.abs(onnx_out.astype(int) - torch_out.astype(int)).max() <= 1
    assert read_metadata(path) == metadata

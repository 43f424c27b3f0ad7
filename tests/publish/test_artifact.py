"""Publishing from a checkpoint goes through the export stage and its gates (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from deploy.artifact import ArtifactError, prepare_artifact
from export.families.resnet import ResnetConfig, ResnetGenerator


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "latest_net_G.pth"
    torch.save(ResnetGenerator(ResnetConfig(ngf=4, n_blocks=1)).state_dict(), path)
    return path


def test_checkpoint_is_exported_with_parity_and_fp16_gate(checkpoint: Path, tmp_path: Path) -> None:
    artifact = prepare_artifact(checkpoint, "tiny", "fp16", tmp_path / "work")
    assert artifact.precision == "fp16"
    assert artifact.metadata.architecture == "resnet"
    assert artifact.gates["parity_vs_pytorch"].startswith("pass")
    assert artifact.gates["psnr_vs_fp32"].startswith("pass")
    assert artifact.onnx_path.name == "model.fp16.onnx"


def test_a_non_generator_checkpoint_is_refused_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "bogus.pth"
    torch.save({"encoder.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(ArtifactError) as info:
        prepare_artifact(path, "tiny", "fp32", tmp_path / "work")
    assert "encoder.weight" in str(info.value) or "family" in str(info.value)

"""Fixtures for the export tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from tests.export.generators import CLI_RUNS, CliExport, original_checkpoint


@pytest.fixture(autouse=True, scope="package")
def _one_torch_thread() -> Iterator[None]:
    # The CI machine has two cores shared by every test; one PyTorch thread is plenty for tiny models.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def cli_export(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], CliExport]:
    """Run ``pastiche export`` once per family (on demand) and share the result across tests."""
    from typer.testing import CliRunner

    from pastiche.cli import app

    runs: dict[str, CliExport] = {}

    def run(family: str) -> CliExport:
        if family not in runs:
            directory = tmp_path_factory.mktemp(family)
            checkpoint = original_checkpoint(family, directory)
            out = directory / "export"
            arguments = [
                "export",
                str(checkpoint),
                "--out",
                str(out),
                "--eval-side",
                "64",
                "--eval-limit",
                "3",
                "--calibration-limit",
                "3",
                "--latency-side",
                "64",
                "--latency-runs",
                "2",
                "--threads",
                "1",
                *CLI_RUNS[family],
            ]
            result = CliRunner().invoke(app, arguments)
            runs[family] = CliExport(family, checkpoint, out, result.exit_code, result.output)
        return runs[family]

    return run


@pytest.fixture(scope="session")
def tiny_resnet_onnx(cli_export: Callable[[str], CliExport]) -> Path:
    """A tiny CycleGAN ResnetGenerator exported to the served FP32 ONNX contract."""
    return cli_export("resnet").out / "model.onnx"

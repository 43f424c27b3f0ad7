"""Fixtures for the export tests."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def _one_torch_thread() -> Iterator[None]:
    # The CI machine has two cores shared by every test; one PyTorch thread is plenty for tiny models.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@dataclass
class CliExport:
    """One ``pastiche export`` run of a tiny checkpoint saved in its family's original format."""

    family: str
    checkpoint: Path
    out: Path
    exit_code: int
    output: str

    @property
    def report(self) -> dict[str, Any]:
        return json.loads((self.out / "report.json").read_text())


# Per-family CLI arguments: small images keep the suite fast; resnet also gets an INT8 gate it cannot
# pass, to exercise rejection, margins and --strict; unet_256 gets per-image batch statistics.
CLI_RUNS: dict[str, list[str]] = {
    "resnet": ["--int8-min-psnr", "99", "--strict", "--engines"],
    "unet_256": ["--batchnorm-stats", "per-image"],
    "unet_128": [],
    "animegan": ["--no-align-corners", "--calibration", "percentile"],
    "transformer_net": ["--calibration", "minmax", "--title", "Candy", "--description", "Johnson candy"],
}


def _checkpoint(family: str, directory: Path) -> Path:
    """The tiny generator saved the way its original code (or an old release of it) saves it."""
    from tests.export.generators import save_original, tiny_generator

    module = tiny_generator(family)
    state = module.state_dict()
    if family == "resnet":
        # Trained with DataParallel: every key carries "module.".
        path = directory / "latest_net_G_A.pth"
        torch.save({f"module.{k}": v for k, v in state.items()}, path)
        return path
    if family == "transformer_net":
        # Released before PyTorch 0.4: InstanceNorm layers carry running statistics.
        path = directory / "candy.pth"
        legacy = {
            f"{name}.running_mean": torch.zeros(len(m.weight))
            for name, m in module.named_modules()
            if isinstance(m, torch.nn.InstanceNorm2d)
        }
        torch.save(state | legacy, path)
        return path
    names = {"unet_256": "latest_net_G.pth", "unet_128": "latest_net_G.pth", "animegan": "face_paint_512_v2.pt"}
    return save_original(module, directory / names[family])


@pytest.fixture(scope="session")
def cli_export(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], CliExport]:
    """Run ``pastiche export`` once per family (on demand) and share the result across tests."""
    from typer.testing import CliRunner

    from pastiche.cli import app

    runs: dict[str, CliExport] = {}

    def run(family: str) -> CliExport:
        if family not in runs:
            directory = tmp_path_factory.mktemp(family)
            checkpoint = _checkpoint(family, directory)
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

"""Tiny exported styles and a real bundled Triton (explicit model control) per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.triton import TritonPorts, TritonServer
from deploy.triton_control import TritonControl
from export.families import RESNET, build_seeded_resnet
from export.onnx_export import export_onnx
from pastiche.contract import StyleMetadata
from tests.conftest import free_port

TINY = StyleMetadata(title="Tiny", description="4-channel seeded ResNet", architecture=RESNET.name, size_multiple=4)


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Two exported tiny styles with different weights (seed 0 and seed 1)."""
    folder = tmp_path_factory.mktemp("onnx")
    return {
        seed: export_onnx(build_seeded_resnet(ngf=4, n_blocks=1, seed=seed), RESNET.value_range, folder / f"tiny{seed}.onnx", TINY)
        for seed in (0, 1)
    }


GRPC_PORTS: dict[int, int] = {}
"""HTTP port → gRPC port of the Tritons these tests started (the examples need both)."""


def triton_ports() -> TritonPorts:
    ports = TritonPorts(free_port(), free_port(), free_port())
    GRPC_PORTS[ports.http] = ports.grpc
    return ports


@pytest.fixture(scope="module")
def local_triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, TritonControl]]:
    """An empty local repository served by the bundled Triton with nothing loaded yet."""
    workdir = tmp_path_factory.mktemp("triton")
    repository = workdir / "model_repository"
    repository.mkdir()
    with TritonServer(repository, workdir, triton_ports(), load_models=()) as server:
        control = TritonControl(server.http_url)
        yield repository, control
        control.close()

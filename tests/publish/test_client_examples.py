"""The documented client examples run against the bundled Triton, so they cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.artifact import prepare_artifact
from deploy.model_store import LocalStore
from deploy.publish import publish
from deploy.triton_control import TritonControl

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).parents[2] / "deploy" / "examples"


@pytest.fixture(scope="module")
def served(local_triton: tuple[Path, TritonControl], tiny_onnx: dict[int, Path], tmp_path_factory: pytest.TempPathFactory) -> str:
    repository, triton = local_triton
    publish(prepare_artifact(tiny_onnx[0], "clients", None, tmp_path_factory.mktemp("w")), "clients", LocalStore(repository), triton)
    publish(prepare_artifact(tiny_onnx[1], "clients", None, tmp_path_factory.mktemp("w")), "clients", LocalStore(repository), triton)
    return triton.url.removeprefix("http://")


def run(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=60).stdout


def test_http_example_live_and_pinned(served: str) -> None:
    assert "clients version 2: uint8 [1, 256, 256, 3]" in run(sys.executable, str(EXAMPLES / "client_http.py"), served, "clients")
    assert "clients version 1:" in run(sys.executable, str(EXAMPLES / "client_http.py"), served, "clients", "1")


def test_grpc_example(served: str, local_triton: tuple[Path, TritonControl]) -> None:
    # The module's Triton listens for gRPC on its own port; read it from the server's metadata-free ports.
    grpc = local_triton[1].url.removeprefix("http://")
    host, http_port = grpc.rsplit(":", 1)
    from tests.publish.conftest import GRPC_PORTS

    out = run(sys.executable, str(EXAMPLES / "client_grpc.py"), f"{host}:{GRPC_PORTS[int(http_port)]}", "clients", "2")
    assert "clients version 2: uint8 [2, 128, 128, 3]" in out


def test_curl_example(served: str) -> None:
    body = json.loads(run("bash", str(EXAMPLES / "client_curl.sh"), served, "clients", "1"))
    assert body["model_version"] == "1"
    assert body["outputs"][0]["shape"] == [1, 8, 8, 3] and body["outputs"][0]["datatype"] == "UINT8"

"""Pure parts of the bundled-Triton launcher and the local stack."""

from __future__ import annotations

import socket
from pathlib import Path

from deploy.stack import StackSettings, port_claims, port_in_use
from deploy.triton import TritonInstallation, TritonPorts, prepare_backend_directory, server_command


def test_bundled_triton_is_found_with_the_stub_for_this_python() -> None:
    installation = TritonInstallation.find()
    assert installation.binary.name == "tritonserver"
    assert installation.stub.parent.name.count(".") == 1


def test_private_backend_directory_links_library_utils_and_stub(tmp_path: Path) -> None:
    installation = TritonInstallation.find()
    backends = prepare_backend_directory(installation, tmp_path)
    python_dir = backends / "python"
    assert (python_dir / "triton_python_backend_stub").resolve() == installation.stub.resolve()
    assert (python_dir / "libtriton_python.so").exists()
    prepare_backend_directory(installation, tmp_path)  # idempotent


def test_server_command_uses_explicit_model_control_on_loopback(tmp_path: Path) -> None:
    installation = TritonInstallation.find()
    command = server_command(installation, tmp_path, "/repo", TritonPorts(1, 2, 3), ("a", "b"))
    assert "--model-control-mode=explicit" in command
    assert {"--http-port=1", "--grpc-port=2", "--metrics-port=3"} <= set(command)
    assert {"--load-model=a", "--load-model=b"} <= set(command)
    assert "--http-address=127.0.0.1" in command


def test_busy_port_is_detected_and_named() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        busy = sock.getsockname()[1]
        assert port_in_use(busy)
        claims = port_claims(StackSettings(gateway_port=busy))
        assert [c.variable for c in claims if c.port == busy] == ["PASTICHE_GATEWAY_PORT"]


def test_external_s3_endpoint_claims_no_local_s3_port() -> None:
    claims = port_claims(StackSettings(s3_endpoint_url="http://s3.example:9000"))
    assert all(claim.service != "local S3 endpoint" for claim in claims)

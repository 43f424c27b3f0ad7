"""Shared fixtures: free ports, real photographs, and the real stack (S3 + Triton + gateway)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest


def free_port() -> int:
    """A port nothing listens on right now (tests run beside a possibly running `make up`)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A real photograph bundled with scikit-image (512x512 RGB)."""
    from skimage import data

    return data.astronaut()


@dataclass
class RunningStack:
    """Handles to the services of a test stack."""

    repository: Path
    s3_endpoint: str
    bucket: str
    triton_http: str
    triton_grpc: str
    triton_metrics: str
    gateway: str
    workdir: Path
    api_keys: dict[str, str] = field(default_factory=dict)
    """Tenant → plaintext API key accepted by the gateway ("limited" has a 3 requests/minute limit)."""

    def auth(self, tenant: str = "alpha") -> dict[str, str]:
        """``Authorization`` header for ``tenant``."""
        return {"Authorization": f"Bearer {self.api_keys[tenant]}"}


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """The real services on free ports, with the bundled styles in a fresh repository."""
    from deploy.bundled import build_bundled_repository
    from deploy.gateway_server import GatewayServer
    from deploy.local_s3 import LocalS3Server
    from deploy.stack import StackSettings, gateway_environment
    from deploy.triton import TritonPorts, TritonServer
    from gateway.auth import key_entry, new_key

    workdir = tmp_path_factory.mktemp("stack")
    repository = workdir / "model_repository"
    build_bundled_repository(repository, Path(".pastiche/exports"))
    settings = StackSettings(
        triton_http_port=free_port(),
        triton_grpc_port=free_port(),
        triton_metrics_port=free_port(),
        gateway_port=free_port(),
        s3_port=free_port(),
        s3_bucket="pastiche-test",
        repository=repository,
        workdir=workdir,
    )
    ports = TritonPorts(settings.triton_http_port, settings.triton_grpc_port, settings.triton_metrics_port)
    with LocalS3Server(workdir, settings.s3_port) as s3:
        s3.create_bucket(settings.s3_bucket)
        with TritonServer(repository, workdir / "triton", ports) as triton:
            api_keys = {tenant: new_key() for tenant in ("alpha", "beta", "limited")}
            env = gateway_environment(settings, s3.endpoint_url, {t: api_keys[t] for t in ("alpha", "beta")})
            env["PASTICHE_API_KEYS"] += "," + key_entry("limited", api_keys["limited"], requests_per_minute=3)
            with GatewayServer(workdir, settings.gateway_port, env) as gateway:
                yield RunningStack(
                    repository=repository,
                    s3_endpoint=s3.endpoint_url,
                    bucket=settings.s3_bucket,
                    triton_http=triton.http_url,
                    triton_grpc=triton.grpc_url,
                    triton_metrics=triton.metrics_url,
                    gateway=gateway.url,
                    workdir=workdir,
                    api_keys=api_keys,
                )

"""What a benchmark runs against: a running stack given by URLs, or one started here on free ports."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console


@dataclass(frozen=True)
class Endpoints:
    """Where each layer listens; any may be None when benchmarking only part of a stack."""

    gateway: str | None = None
    triton_http: str | None = None
    """``http://host:port``."""
    triton_grpc: str | None = None
    """``host:port``."""
    triton_metrics: str | None = None
    """``http://host:port/metrics``."""


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def local_stack(
    workdir: Path, build_repository: Callable[[Path], object], with_gateway: bool = True, console: Console | None = None
) -> Iterator[Endpoints]:
    """S3 + Triton (+ gateway) on free ports over the repository ``build_repository`` writes."""
    from deploy.gateway_server import GatewayServer
    from deploy.local_s3 import LocalS3Server
    from deploy.stack import StackSettings, gateway_environment
    from deploy.triton import TritonPorts, TritonServer

    console = console or Console(stderr=True)
    repository = (workdir / "model_repository").resolve()
    build_repository(repository)
    settings = StackSettings(
        triton_http_port=free_port(), triton_grpc_port=free_port(), triton_metrics_port=free_port(),
        gateway_port=free_port(), s3_port=free_port(), s3_bucket="pastiche-bench",
        repository=repository, workdir=workdir,
    )
    with ExitStack() as stack:
        triton = TritonServer(
            repository, workdir / "triton",
            TritonPorts(settings.triton_http_port, settings.triton_grpc_port, settings.triton_metrics_port),
        )
        with console.status("starting Triton (loading models)"):
            stack.enter_context(triton)
        gateway_url = None
        if with_gateway:
            with console.status("starting S3 endpoint and gateway"):
                s3 = stack.enter_context(LocalS3Server(workdir, settings.s3_port))
                s3.create_bucket(settings.s3_bucket)
                gateway = GatewayServer(workdir, settings.gateway_port, gateway_environment(settings, s3.endpoint_url))
                stack.enter_context(gateway)
                gateway_url = gateway.url
        yield Endpoints(gateway_url, triton.http_url, triton.grpc_url, triton.metrics_url)

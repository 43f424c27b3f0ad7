"""`make up`: the whole stack on this machine — local S3, the bundled Triton, the gateway.

Ports and the S3 endpoint come from ``PASTICHE_*`` environment variables (see README). Ctrl-C
stops all three, in reverse start order, each by process group, so nothing is left behind.
"""

from __future__ import annotations

import signal
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console

from deploy.bundled import build_bundled_repository
from deploy.gateway_server import GatewayServer
from deploy.local_s3 import LOCAL_CREDENTIALS, LocalS3Server
from deploy.process import ServiceError
from deploy.triton import TritonPorts, TritonServer
from gateway.auth import key_entry, new_key


class StackSettings(BaseSettings):
    """Where the local stack listens and keeps its files."""

    model_config = SettingsConfigDict(env_prefix="PASTICHE_", extra="ignore")

    triton_http_port: int = 8000
    triton_grpc_port: int = 8001
    triton_metrics_port: int = 8002
    gateway_port: int = 8080
    s3_port: int = 9000
    s3_endpoint_url: str | None = None
    """An existing S3 endpoint to use instead of starting the local one."""
    s3_bucket: str = "pastiche"
    repository: Path = Path("model_repository")
    workdir: Path = Path(".pastiche")


@dataclass(frozen=True)
class PortClaim:
    port: int
    service: str
    variable: str


def port_claims(settings: StackSettings) -> list[PortClaim]:
    """Every port the stack will bind, with who binds it and which variable moves it."""
    claims = [
        PortClaim(settings.triton_http_port, "Triton HTTP", "PASTICHE_TRITON_HTTP_PORT"),
        PortClaim(settings.triton_grpc_port, "Triton gRPC", "PASTICHE_TRITON_GRPC_PORT"),
        PortClaim(settings.triton_metrics_port, "Triton metrics", "PASTICHE_TRITON_METRICS_PORT"),
        PortClaim(settings.gateway_port, "gateway", "PASTICHE_GATEWAY_PORT"),
    ]
    if not settings.s3_endpoint_url:
        claims.append(PortClaim(settings.s3_port, "local S3 endpoint", "PASTICHE_S3_PORT"))
    return claims


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``host:port`` cannot be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def gateway_environment(settings: StackSettings, s3_endpoint: str, api_keys: dict[str, str] | None = None) -> dict[str, str]:
    """``PASTICHE_*`` settings handed to the gateway process.

    ``api_keys`` maps tenant → plaintext key; only their sha256 digests reach the gateway.
    """
    env = {
        "PASTICHE_TRITON_GRPC_URL": f"127.0.0.1:{settings.triton_grpc_port}",
        "PASTICHE_TRITON_METRICS_URL": f"http://127.0.0.1:{settings.triton_metrics_port}/metrics",
        "PASTICHE_S3_ENDPOINT_URL": s3_endpoint,
        "PASTICHE_S3_BUCKET": settings.s3_bucket,
        # A local development stack: webhook receivers on this machine are the normal case.
        "PASTICHE_JOBS_WEBHOOK_ALLOW_PRIVATE": "true",
    }
    if not settings.s3_endpoint_url:
        env["PASTICHE_S3_ACCESS_KEY_ID"] = LOCAL_CREDENTIALS["aws_access_key_id"]
        env["PASTICHE_S3_SECRET_ACCESS_KEY"] = LOCAL_CREDENTIALS["aws_secret_access_key"]
    if api_keys:
        env["PASTICHE_API_KEYS"] = ",".join(key_entry(tenant, key) for tenant, key in api_keys.items())
    return env


def curl_example(gateway_url: str, style: str, api_key: str | None = None) -> str:
    """The ready-to-paste request printed once the stack is up."""
    auth = f'-H "Authorization: Bearer {api_key}" ' if api_key else ""
    return (
        f"curl -sS {auth}-F image=@photo.jpg -F style={style} {gateway_url}/v1/stylize -o stylized.png"
    )


def run_stack(settings: StackSettings | None = None) -> int:
    """Start everything, print where it is, block until Ctrl-C or a service dies; returns an exit code."""
    settings = settings or StackSettings()
    console = Console()
    busy = [claim for claim in port_claims(settings) if port_in_use(claim.port)]
    if busy:
        for claim in busy:
            console.print(f"[red]port {claim.port} ({claim.service}) is already in use[/]; set {claim.variable} to another port")
        return 1

    styles = build_bundled_repository(settings.repository, settings.workdir / "exports", console=console)
    s3 = None if settings.s3_endpoint_url else LocalS3Server(settings.workdir, settings.s3_port)
    triton = TritonServer(
        settings.repository.resolve(),
        settings.workdir / "triton",
        TritonPorts(settings.triton_http_port, settings.triton_grpc_port, settings.triton_metrics_port),
    )
    started: list = []
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        if s3 is not None:
            with console.status("starting local S3 endpoint (moto)"):
                s3.start()
                started.append(s3)
                s3.wait_ready()
                s3.create_bucket(settings.s3_bucket)
            console.print(f"[green]✓[/] S3 endpoint  {s3.endpoint_url}  bucket '{settings.s3_bucket}'")
        s3_endpoint = s3.endpoint_url if s3 is not None else str(settings.s3_endpoint_url)
        with console.status("starting Triton Inference Server (loading models)"):
            triton.start()
            started.append(triton)
            triton.wait_ready()
        console.print(f"[green]✓[/] Triton       HTTP {triton.http_url}  gRPC {triton.grpc_url}  metrics {triton.metrics_url}")
        dev_key = new_key()
        gateway_env = gateway_environment(settings, s3_endpoint, {"dev": dev_key})
        gateway = GatewayServer(settings.workdir, settings.gateway_port, gateway_env)
        with console.status("starting gateway"):
            gateway.start()
            started.append(gateway)
            gateway.wait_ready()
        console.print(f"[green]✓[/] Gateway      {gateway.url}  (API docs {gateway.url}/docs)")
        console.print(f"\nStyles: {', '.join(styles)}.  Logs: {settings.workdir}/")
        console.print(f"Dev API key (tenant 'dev', valid until Ctrl-C): {dev_key}", soft_wrap=True)
        console.print("Try it:\n  " + curl_example(gateway.url, styles[0], dev_key), soft_wrap=True)
        console.print("\nCtrl-C stops everything.")
        while not stop.wait(1.0):
            dead = [service for service in started if service.process.exited() is not None]
            if dead:
                console.print(f"[red]{dead[0].process.name} exited[/]; stopping. Log tail:\n{dead[0].process.log_tail()}")
                return 1
        return 0
    except ServiceError as error:
        console.print(f"[red]{error}[/]")
        return 1
    finally:
        console.print("stopping…")
        for service in reversed(started):
            service.stop()
        console.print("stopped.")

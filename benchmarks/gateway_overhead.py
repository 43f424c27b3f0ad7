"""Latency the gateway adds over a direct Triton gRPC call, for a 512x512 JPEG, measured side by side.

Each iteration sends a fresh 512x512 JPEG (distinct bytes, so the result cache never answers)
once through ``POST /v1/stylize`` and once straight to Triton over gRPC (client-side JPEG
decode + ``infer`` with the same 512x512 tensor), alternating the order. The gateway path
additionally stores the input and output in S3 and encodes the PNG: that is the overhead.

    python benchmarks/gateway_overhead.py                    # starts a private stack on free ports
    python benchmarks/gateway_overhead.py --gateway http://127.0.0.1:8080 --triton 127.0.0.1:8001 --api-key pk_...
"""

from __future__ import annotations

import io
import socket
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import numpy as np
import tritonclient.grpc as grpcclient
import typer
from PIL import Image
from rich.console import Console
from rich.progress import track
from rich.table import Table

from pastiche.contract import INPUT_NAME, OUTPUT_NAME, TRITON_DTYPE

STYLE = "watercolor"
console = Console()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def jpeg_512(seed: int) -> bytes:
    """A 512x512 JPEG of a real photograph, made unique by a seeded tweak of a few pixels."""
    from skimage import data

    pixels = data.astronaut().copy()
    rng = np.random.default_rng(seed)
    pixels[rng.integers(0, 512, 16), rng.integers(0, 512, 16)] = rng.integers(0, 256, (16, 3))
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def direct_triton(client: grpcclient.InferenceServerClient, jpeg: bytes) -> float:
    """Seconds for client-side decode + one gRPC infer of the 512x512 image."""
    started = time.perf_counter()
    pixels = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"), dtype=np.uint8)[np.newaxis]
    tensor = grpcclient.InferInput(INPUT_NAME, list(pixels.shape), TRITON_DTYPE)
    tensor.set_data_from_numpy(pixels)
    result = client.infer(STYLE, [tensor], outputs=[grpcclient.InferRequestedOutput(OUTPUT_NAME)])
    assert result.as_numpy(OUTPUT_NAME).shape == pixels.shape
    return time.perf_counter() - started


def through_gateway(http: httpx.Client, gateway: str, api_key: str | None, jpeg: bytes) -> float:
    """Seconds for one ``POST /v1/stylize`` (PNG response, input and output stored in S3)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    started = time.perf_counter()
    response = http.post(f"{gateway}/v1/stylize", files={"image": ("p.jpg", jpeg, "image/jpeg")},
                         data={"style": STYLE, "max_side": "512"}, headers=headers)
    elapsed = time.perf_counter() - started
    if response.status_code != 200 or response.headers.get("X-Pastiche-Cache") != "miss":
        raise RuntimeError(f"gateway answered {response.status_code} {response.headers.get('X-Pastiche-Cache')}: {response.text[:200]}")
    return elapsed


def start_private_stack(stack: ExitStack, workdir: Path) -> tuple[str, str, str]:
    """S3 + Triton + gateway on free ports; returns (gateway URL, Triton gRPC URL, API key)."""
    from deploy.bundled import build_bundled_repository
    from deploy.gateway_server import GatewayServer
    from deploy.local_s3 import LocalS3Server
    from deploy.stack import StackSettings, gateway_environment
    from deploy.triton import TritonPorts, TritonServer
    from gateway.auth import new_key

    settings = StackSettings(
        triton_http_port=_free_port(), triton_grpc_port=_free_port(), triton_metrics_port=_free_port(),
        gateway_port=_free_port(), s3_port=_free_port(), repository=workdir / "model_repository", workdir=workdir,
    )
    build_bundled_repository(settings.repository, Path(".pastiche/exports"), console=console)
    with console.status("starting S3, Triton and the gateway"):
        s3 = stack.enter_context(LocalS3Server(workdir, settings.s3_port))
        s3.create_bucket(settings.s3_bucket)
        ports = TritonPorts(settings.triton_http_port, settings.triton_grpc_port, settings.triton_metrics_port)
        triton = stack.enter_context(TritonServer(settings.repository.resolve(), workdir / "triton", ports))
        key = new_key()
        env = gateway_environment(settings, s3.endpoint_url, {"bench": key})
        gateway = stack.enter_context(GatewayServer(workdir, settings.gateway_port, env))
    return gateway.url, triton.grpc_url, key


def main(
    iterations: int = typer.Option(30, min=3, help="Measured requests per path."),
    warmup: int = typer.Option(3, min=0, help="Unmeasured requests per path first."),
    gateway: str | None = typer.Option(None, help="Gateway URL of a running stack (default: start a private one)."),
    triton: str | None = typer.Option(None, help="Triton gRPC host:port of that stack."),
    api_key: str | None = typer.Option(None, help="API key for that gateway."),
) -> None:
    """Print p50/p90 of both paths and the p50 the gateway adds."""
    with ExitStack() as stack:
        if gateway is None or triton is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gateway-overhead-")))
            gateway, triton, api_key = start_private_stack(stack, workdir)
        client = grpcclient.InferenceServerClient(triton)
        http = stack.enter_context(httpx.Client(timeout=120))
        times: dict[str, list[float]] = {"triton": [], "gateway": []}
        seed = int(time.time())
        for index in track(range(warmup + iterations), description="measuring", console=console):
            jpeg = jpeg_512(seed + index)
            pair = [("triton", lambda: direct_triton(client, jpeg)),
                    ("gateway", lambda: through_gateway(http, gateway, api_key, jpeg))]
            for path, measure in pair if index % 2 else reversed(pair):
                elapsed = measure()
                if index >= warmup:
                    times[path].append(elapsed)
    table = Table(title=f"512x512 JPEG, {iterations} requests per path, one at a time")
    for column in ("path", "p50 ms", "p90 ms", "mean ms"):
        table.add_column(column)
    for path, values in times.items():
        ordered = sorted(values)
        table.add_row(path, f"{statistics.median(ordered) * 1000:.1f}",
                      f"{ordered[int(0.9 * (len(ordered) - 1))] * 1000:.1f}", f"{statistics.mean(ordered) * 1000:.1f}")
    console.print(table)
    added = (statistics.median(times["gateway"]) - statistics.median(times["triton"])) * 1000
    console.print(f"p50 latency added by the gateway: [bold]{added:.1f} ms[/]")


if __name__ == "__main__":
    typer.run(main)

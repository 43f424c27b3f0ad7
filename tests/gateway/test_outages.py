"""S3 down and Triton down → 503 with Retry-After, and recovery once they are back.

A private S3 endpoint, Triton and gateway are started here (on free ports, with the shared
fixture's model repository) so stopping them never disturbs the shared stack.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from deploy.gateway_server import GatewayServer
from deploy.local_s3 import LocalS3Server
from deploy.stack import StackSettings, gateway_environment
from deploy.triton import TritonPorts, TritonServer
from gateway.auth import new_key
from tests.conftest import RunningStack, free_port
from tests.gateway import images

pytestmark = pytest.mark.integration

STYLE = "watercolor"


@dataclass
class PrivateStack:
    workdir: Path
    repository: Path
    settings: StackSettings
    s3: LocalS3Server
    triton: TritonServer
    gateway: GatewayServer
    key: str

    def stylize(self, data: bytes) -> httpx.Response:
        return httpx.post(f"{self.gateway.url}/v1/stylize", files={"image": ("a.jpg", data, "image/jpeg")},
                          data={"style": STYLE}, headers={"Authorization": f"Bearer {self.key}"}, timeout=60)

    def new_s3(self) -> LocalS3Server:
        return LocalS3Server(self.workdir, self.settings.s3_port)

    def new_triton(self) -> TritonServer:
        ports = TritonPorts(self.settings.triton_http_port, self.settings.triton_grpc_port, self.settings.triton_metrics_port)
        return TritonServer(self.repository, self.workdir / "triton", ports)


@pytest.fixture
def private(stack: RunningStack, tmp_path: Path) -> Iterator[PrivateStack]:
    settings = StackSettings(
        triton_http_port=free_port(), triton_grpc_port=free_port(), triton_metrics_port=free_port(),
        gateway_port=free_port(), s3_port=free_port(), s3_bucket="outage", repository=stack.repository, workdir=tmp_path,
    )
    key = new_key()
    s3 = LocalS3Server(tmp_path, settings.s3_port)
    triton = TritonServer(stack.repository, tmp_path / "triton",
                          TritonPorts(settings.triton_http_port, settings.triton_grpc_port, settings.triton_metrics_port))
    env = {**gateway_environment(settings, s3.endpoint_url, {"ops": key}), "PASTICHE_CATALOGUE_TTL_S": "0"}
    gateway = GatewayServer(tmp_path, settings.gateway_port, env)
    handle = PrivateStack(tmp_path, stack.repository, settings, s3, triton, gateway, key)
    s3.start()
    triton.start()
    try:
        s3.wait_ready()
        s3.create_bucket(settings.s3_bucket)
        triton.wait_ready()
        gateway.start()
        gateway.wait_ready()
        yield handle
    finally:
        for service in (handle.gateway, handle.triton, handle.s3):
            service.stop()


def eventually_ok(private: PrivateStack, data: bytes, timeout: float = 40.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = private.stylize(data)
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        assert response.status_code == 503, response.text
        time.sleep(0.5)


def assert_unavailable(response: httpx.Response, code: str) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == code
    assert int(response.headers["retry-after"]) >= 1


def test_s3_then_triton_outage_gives_503_and_recovers(private: PrivateStack, astronaut: np.ndarray) -> None:
    photos = [images.encode(images.noisy_crop(astronaut, 64, 80, seed=300 + i)) for i in range(4)]
    assert private.stylize(photos[0]).status_code == 200

    private.s3.stop()
    assert_unavailable(private.stylize(photos[1]), "storage_unavailable")
    ready = httpx.get(f"{private.gateway.url}/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["s3"] != "ok"
    private.s3 = private.new_s3()  # moto keeps data in memory: the bucket comes back empty
    private.s3.start()
    private.s3.wait_ready()
    private.s3.create_bucket(private.settings.s3_bucket)
    recovered = eventually_ok(private, photos[1])
    assert recovered.status_code == 200 and recovered.headers["X-Pastiche-Cache"] == "miss"

    private.triton.stop()
    assert_unavailable(private.stylize(photos[2]), "triton_unavailable")
    styles = httpx.get(f"{private.gateway.url}/v1/styles", headers={"Authorization": f"Bearer {private.key}"})
    assert_unavailable(styles, "triton_unavailable")
    private.triton = private.new_triton()
    private.triton.start()
    private.triton.wait_ready()
    assert eventually_ok(private, photos[2]).status_code == 200

"""Gateways started as real subprocesses against the session stack's S3 endpoint and Triton.

Each test gets its own bucket so the stack's own gateway (which also runs a job worker) never
sees these jobs, and the worker settings are shortened (lease, poll, backoff) to keep tests fast.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from deploy.gateway_server import GatewayServer
from deploy.local_s3 import LOCAL_CREDENTIALS
from pastiche.s3 import s3_client
from tests.conftest import RunningStack, free_port

STYLE = "watercolor"
FAST_JOBS = {
    "PASTICHE_JOBS_LEASE_S": "3",
    "PASTICHE_JOBS_POLL_INTERVAL_S": "0.3",
    "PASTICHE_JOBS_WEBHOOK_BACKOFF_S": "0.3",
    "PASTICHE_JOBS_WEBHOOK_TIMEOUT_S": "3",
}

GatewayFactory = Callable[..., GatewayServer]


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def bucket(stack: RunningStack) -> str:
    """A fresh bucket on the stack's S3 endpoint."""
    name = f"jobs-{uuid.uuid4().hex[:12]}"
    s3_client(stack.s3_endpoint, **LOCAL_CREDENTIALS).create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3(stack: RunningStack):  # noqa: ANN201 - boto3 client
    return s3_client(stack.s3_endpoint, **LOCAL_CREDENTIALS)


@pytest.fixture
def start_gateway(stack: RunningStack, tmp_path: Path) -> Iterator[GatewayFactory]:
    """Start gateway processes on ``bucket``; all are stopped at the end of the test."""
    started: list[GatewayServer] = []

    def start(bucket: str, tenant: str = "public", **extra: str) -> GatewayServer:
        env = {
            "PASTICHE_TRITON_GRPC_URL": stack.triton_grpc,
            "PASTICHE_S3_ENDPOINT_URL": stack.s3_endpoint,
            "PASTICHE_S3_BUCKET": bucket,
            "PASTICHE_S3_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
            "PASTICHE_S3_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
            "PASTICHE_DEFAULT_TENANT": tenant,
            **FAST_JOBS,
            **extra,
        }
        workdir = tmp_path / f"gateway-{len(started)}"
        server = GatewayServer(workdir, free_port(), env)
        started.append(server)
        server.start()
        server.wait_ready()
        return server

    yield start
    for server in started:
        server.stop()


def wait_for(gateway_url: str, job_id: str, done: Callable[[dict], bool], timeout: float = 90,
             headers: dict[str, str] | None = None) -> dict:
    """Poll ``GET /v1/jobs/{id}`` until ``done(job)``."""
    deadline = time.monotonic() + timeout
    while True:
        job = httpx.get(f"{gateway_url}/v1/jobs/{job_id}", headers=headers or {}, timeout=10).json()
        if done(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} not done after {timeout}s: {job}")
        time.sleep(0.1)


def finished(job: dict) -> bool:
    return job["status"] in {"succeeded", "failed"}


def object_keys(s3, bucket: str, prefix: str) -> list[str]:  # noqa: ANN001 - boto3 client
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [entry["Key"] for page in pages for entry in page.get("Contents", [])]

"""A local S3 endpoint for the embedded stack: moto's server, a real HTTP endpoint speaking S3.

moto keeps objects in memory, so data lasts as long as the process; production points the
gateway at any S3-compatible endpoint instead (see deploy/README.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from deploy.process import ManagedProcess, Service
from pastiche.s3 import s3_client

LOCAL_CREDENTIALS = {"aws_access_key_id": "pastiche", "aws_secret_access_key": "pastiche-local-secret"}
"""Fixed credentials for the local endpoint (moto accepts any signature)."""


class LocalS3Server(Service):
    """``moto.server`` as a subprocess on ``host:port`` with its log in ``workdir/s3.log``."""

    def __init__(self, workdir: Path, port: int = 9000, host: str = "127.0.0.1") -> None:
        self.port = port
        self.host = host
        command = [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)]
        self.process = ManagedProcess("S3 endpoint (moto)", command, workdir / "s3.log")

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def is_ready(self) -> bool:
        """The endpoint answers HTTP."""
        try:
            httpx.get(self.endpoint_url, timeout=1)
        except httpx.HTTPError:
            return False
        return True

    def start(self) -> None:
        self.process.start()

    def wait_ready(self, timeout: float = 30.0) -> None:
        self.process.wait_ready(self.is_ready, timeout)

    def create_bucket(self, bucket: str) -> None:
        """Create ``bucket`` unless it exists."""
        client = s3_client(self.endpoint_url, **LOCAL_CREDENTIALS)
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if bucket not in existing:
            client.create_bucket(Bucket=bucket)

    def stop(self) -> None:
        self.process.stop(timeout=10)

"""The gateway as a uvicorn subprocess of the local stack."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx

from deploy.process import ManagedProcess, Service


class GatewayServer(Service):
    """``uvicorn gateway.app:create_app --factory`` with settings passed as ``PASTICHE_*`` variables."""

    def __init__(self, workdir: Path, port: int, settings_env: dict[str, str], host: str = "127.0.0.1") -> None:
        self.port = port
        self.host = host
        command = [
            sys.executable, "-m", "uvicorn", "gateway.app:create_app", "--factory",
            "--host", host, "--port", str(port), "--no-access-log",
        ]
        env = {**os.environ, **settings_env}
        self.process = ManagedProcess("gateway", command, workdir / "gateway.log", env)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def is_ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self) -> None:
        self.process.start()

    def wait_ready(self, timeout: float = 60.0) -> None:
        self.process.wait_ready(self.is_ready, timeout)

    def stop(self) -> None:
        self.process.stop(timeout=15)

"""A child service process: own process group, log file, readiness wait, clean stop.

Each service of the local stack (S3 endpoint, Triton, gateway) is one of these, so Ctrl-C or a
failed start never leaves orphans: stopping signals the whole process group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


class ServiceError(RuntimeError):
    """A service exited early or never became ready; the message carries its log tail."""


class ManagedProcess:
    """One service subprocess started in a new session, with stdout/stderr appended to ``log_path``."""

    def __init__(self, name: str, command: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.command = command
        self.log_path = log_path
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Spawn the process in its own process group."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
            )

    def exited(self) -> int | None:
        """Exit code if the process has ended, else ``None``."""
        return None if self.process is None else self.process.poll()

    def wait_ready(self, probe: Callable[[], bool], timeout: float) -> None:
        """Poll ``probe`` until it returns true; raise :class:`ServiceError` on exit or timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.exited()
            if code is not None:
                raise ServiceError(f"{self.name} exited with code {code}:\n{self.log_tail()}")
            if probe():
                return
            time.sleep(0.2)
        raise ServiceError(f"{self.name} not ready after {timeout:.0f}s (log: {self.log_path}):\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        """Last lines of the log, for error messages."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the whole process group (no-op once exited)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signum)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the process group, then SIGKILL if it outlives ``timeout``."""
        if self.process is None or self.process.poll() is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.process.wait()


class Service:
    """Context-manager protocol shared by the stack's services: start, wait ready, always stop."""

    def start(self) -> None:
        raise NotImplementedError

    def wait_ready(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self):  # noqa: ANN204 - returns the concrete service
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

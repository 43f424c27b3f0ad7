"""Launcher for the real Triton Inference Server binary bundled in the ``nvidia-pytriton`` wheel.

The wheel ships ``tritonserver`` (Triton 2.51, python backend only) under
``<site-packages>/pytriton/tritonserver/``. The python backend needs its stub built for the
running Python inside the backend directory, and site-packages may be read-only, so we build a
private backend directory of symlinks and pass ``--backend-directory``. The stub runs ``model.py``
with this environment's site-packages on ``PYTHONPATH`` so it can import onnxruntime.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import httpx

from deploy.process import ManagedProcess, Service


class TritonError(RuntimeError):
    """The bundled Triton could not be found, started, or made ready."""


@dataclass(frozen=True)
class TritonInstallation:
    """Files of the bundled Triton that the launcher needs."""

    binary: Path
    python_backend: Path
    stub: Path

    @classmethod
    def find(cls) -> TritonInstallation:
        """Locate the server and the python-backend stub matching this interpreter."""
        import pytriton

        root = Path(pytriton.__file__).parent / "tritonserver"
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        found = cls(
            binary=root / "bin" / "tritonserver",
            python_backend=root / "backends" / "python",
            stub=root / "python_backend_stubs" / version / "triton_python_backend_stub",
        )
        for path in (found.binary, found.python_backend / "libtriton_python.so", found.stub):
            if not path.exists():
                raise TritonError(f"bundled Triton is incomplete: {path} is missing (Python {version})")
        return found


@dataclass(frozen=True)
class TritonPorts:
    """Triton's three listeners."""

    http: int = 8000
    grpc: int = 8001
    metrics: int = 8002


def prepare_backend_directory(installation: TritonInstallation, workdir: Path) -> Path:
    """Private ``backends/python`` with the backend library, its utils and the matching stub."""
    python_dir = workdir / "backends" / "python"
    python_dir.mkdir(parents=True, exist_ok=True)
    links = {
        "libtriton_python.so": installation.python_backend / "libtriton_python.so",
        "triton_python_backend_utils.py": installation.python_backend / "triton_python_backend_utils.py",
        "triton_python_backend_stub": installation.stub,
    }
    for name, target in links.items():
        link = python_dir / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    return python_dir.parent


def server_command(
    installation: TritonInstallation,
    backend_directory: Path,
    repository: str,
    ports: TritonPorts,
    load_models: tuple[str, ...] = ("*",),
    host: str = "127.0.0.1",
) -> list[str]:
    """Command line for explicit model control with the given models loaded at start."""
    command = [
        str(installation.binary),
        f"--model-repository={repository}",
        f"--backend-directory={backend_directory}",
        "--model-control-mode=explicit",
        f"--http-address={host}",
        f"--grpc-address={host}",
        f"--metrics-address={host}",
        f"--http-port={ports.http}",
        f"--grpc-port={ports.grpc}",
        f"--metrics-port={ports.metrics}",
        "--allow-metrics=true",
        "--allow-gpu-metrics=false",
        # Summary (quantile) latencies feed the p95 panels and alerts in deploy/monitoring.
        "--metrics-config=summary_latencies=true",
        "--strict-readiness=true",
        "--exit-on-error=true",
        "--log-verbose=0",
        "--pinned-memory-pool-byte-size=0",
    ]
    command += [f"--load-model={model}" for model in load_models]
    return command


def server_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for the server: the python stub imports packages from this venv.

    ``model.py`` adds ``PYTHONPATH`` itself, since the stub's embedded interpreter ignores it.
    The stub links the system ``libpython3.X.so.1.0`` (Debian ``libpython3.X``); pointing
    ``LD_LIBRARY_PATH`` at another build of the same minor version (pyenv's) makes the stub
    return empty output tensors, so the library path is left alone.
    """
    env = dict(os.environ if base is None else base)
    site_packages = sysconfig.get_paths()["purelib"]
    env["PYTHONPATH"] = os.pathsep.join(p for p in (site_packages, env.get("PYTHONPATH", "")) if p)
    return env


class TritonServer(Service):
    """A running ``tritonserver`` with its log in ``workdir/triton.log``; a context manager."""

    def __init__(
        self,
        repository: str | Path,
        workdir: Path,
        ports: TritonPorts = TritonPorts(),
        load_models: tuple[str, ...] = ("*",),
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.repository = str(repository)
        self.workdir = workdir
        self.ports = ports
        self.load_models = load_models
        self.extra_env = extra_env or {}
        self.process = ManagedProcess("tritonserver", [], workdir / "triton.log")

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.http}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.ports.grpc}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.metrics}/metrics"

    def start(self) -> None:
        """Prepare the private backend directory and spawn the server."""
        installation = TritonInstallation.find()
        backends = prepare_backend_directory(installation, self.workdir)
        self.process.command = server_command(installation, backends, self.repository, self.ports, self.load_models)
        self.process.env = {**server_environment(), **self.extra_env}
        self.process.start()

    def is_ready(self) -> bool:
        """``/v2/health/ready`` answers 200 (all loaded models ready)."""
        try:
            return httpx.get(f"{self.http_url}/v2/health/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Block until ready; raise :class:`~deploy.process.ServiceError` with the log tail if not."""
        self.process.wait_ready(self.is_ready, timeout)

    def stop(self) -> None:
        """SIGTERM lets Triton unload models and remove its shared-memory regions."""
        self.process.stop(timeout=30)

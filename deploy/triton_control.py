"""Talking to a running Triton through its model repository API (explicit model control)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from pastiche.contract import INPUT_NAME, OUTPUT_NAME, TRITON_DTYPE


class TritonUnavailable(RuntimeError):
    """Triton cannot be reached, or refused a repository operation; the message says which."""


def host_port(url: str) -> str:
    """``http://127.0.0.1:8000`` → ``127.0.0.1:8000`` (tritonclient takes no scheme)."""
    return url.split("://", 1)[-1].rstrip("/")


@dataclass(frozen=True)
class VersionState:
    """One row of Triton's repository index."""

    version: int
    state: str
    reason: str = ""


class TritonControl:
    """Load, unload, readiness and inference for one Triton server, over HTTP."""

    def __init__(self, url: str, timeout: float = 120.0) -> None:
        self.url = url
        self.client = triton_http.InferenceServerClient(
            host_port(url), connection_timeout=timeout, network_timeout=timeout
        )

    def check_live(self) -> None:
        """Raise :class:`TritonUnavailable` unless the server answers and is live."""
        try:
            live = self.client.is_server_live()
        except (InferenceServerException, OSError) as error:
            raise TritonUnavailable(f"Triton at {self.url} is unreachable: {error}") from None
        if not live:
            raise TritonUnavailable(f"Triton at {self.url} is not live")

    def load(self, style: str) -> None:
        """(Re)load ``style`` from the repository; Triton keeps serving loaded versions meanwhile."""
        try:
            self.client.load_model(style)
        except InferenceServerException as error:
            raise TritonUnavailable(f"Triton failed to load '{style}': {error.message()}") from None

    def unload(self, style: str) -> None:
        """Unload every version of ``style``."""
        try:
            self.client.unload_model(style)
        except InferenceServerException as error:
            raise TritonUnavailable(f"Triton failed to unload '{style}': {error.message()}") from None

    def version_states(self, style: str) -> dict[int, VersionState]:
        """Triton's view of ``style``'s versions (READY, UNAVAILABLE with a reason, …)."""
        try:
            index = self.client.get_model_repository_index()
        except InferenceServerException as error:
            raise TritonUnavailable(f"Triton repository index failed: {error.message()}") from None
        states = {}
        for entry in index:
            if entry.get("name") == style and str(entry.get("version", "")).isdigit():
                version = int(entry["version"])
                states[version] = VersionState(version, entry.get("state", ""), entry.get("reason", ""))
        return states

    def is_ready(self, style: str, version: int | None = None) -> bool:
        """Whether ``style`` (at ``version``, or its default version) serves requests."""
        try:
            return self.client.is_model_ready(style, "" if version is None else str(version))
        except InferenceServerException:
            return False

    def infer(self, style: str, images: np.ndarray, version: int | None = None) -> tuple[np.ndarray, int]:
        """Stylize a uint8 NHWC batch; returns the output and the version that answered."""
        tensor = triton_http.InferInput(INPUT_NAME, list(images.shape), TRITON_DTYPE)
        tensor.set_data_from_numpy(images, binary_data=True)
        output = triton_http.InferRequestedOutput(OUTPUT_NAME, binary_data=True)
        result = self.client.infer(style, [tensor], model_version="" if version is None else str(version), outputs=[output])
        return result.as_numpy(OUTPUT_NAME), int(result.get_response()["model_version"])

    def close(self) -> None:
        """Close the HTTP connection pool (Triton waits for open connections on shutdown)."""
        self.client.close()

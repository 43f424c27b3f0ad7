"""Async gRPC access to Triton: the style catalogue (repository index + config parameters) and inference."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import tritonclient.grpc.aio as grpcclient
from tritonclient.utils import InferenceServerException

from pastiche.contract import INTERNAL_MODEL_PREFIX, INPUT_NAME, OUTPUT_NAME, TRITON_DTYPE, StyleMetadata


class TritonUnavailable(RuntimeError):
    """Triton is down, overloaded, or rejected the request for capacity reasons."""


class StyleNotFound(LookupError):
    """No ready model (or version) with that name."""


class TritonFailed(RuntimeError):
    """Triton answered with an error that is neither capacity nor a missing model."""


@dataclass(frozen=True)
class Style:
    """A servable style as Triton describes it."""

    name: str
    versions: tuple[str, ...]
    metadata: StyleMetadata

    @property
    def live_version(self) -> str:
        """The version served when a request names none: the highest ready one."""
        return self.versions[-1]


@dataclass(frozen=True)
class InferenceResult:
    pixels: np.ndarray
    model_version: str


def _is_unavailable(error: InferenceServerException) -> bool:
    status = (error.status() or "").upper()
    return any(word in status for word in ("UNAVAILABLE", "DEADLINE", "RESOURCE_EXHAUSTED", "CANCELLED"))


class TritonGateway:
    """One long-lived async gRPC client, created in the app's lifespan."""

    def __init__(self, url: str, timeout_s: float, catalogue_ttl_s: float = 5.0) -> None:
        self.client = grpcclient.InferenceServerClient(url=url)
        self.timeout_s = timeout_s
        self.catalogue_ttl_s = catalogue_ttl_s
        self._catalogue: tuple[float, list[Style]] | None = None

    async def close(self) -> None:
        await self.client.close()

    async def is_ready(self) -> bool:
        """Server live and ready (never raises)."""
        try:
            return bool(await self.client.is_server_ready(client_timeout=2))
        except InferenceServerException:
            return False

    def forget_catalogue(self) -> None:
        """Drop the cached catalogue (a model was unloaded or Triton restarted)."""
        self._catalogue = None

    async def styles(self) -> list[Style]:
        """Every model with at least one READY version, reused for ``catalogue_ttl_s`` seconds."""
        now = time.monotonic()
        if self._catalogue is not None and now - self._catalogue[0] < self.catalogue_ttl_s:
            return self._catalogue[1]
        styles = await self._read_catalogue()
        self._catalogue = (now, styles)
        return styles

    async def _read_catalogue(self) -> list[Style]:
        """Every model with at least one READY version, with its metadata from config parameters."""
        try:
            index = await self.client.get_model_repository_index(as_json=True, client_timeout=5)
        except InferenceServerException as error:
            raise TritonUnavailable(f"Triton repository index unavailable: {error.message()}") from error
        ready: dict[str, list[str]] = {}
        for model in index.get("models", []):
            if model.get("state") == "READY" and not model["name"].startswith(INTERNAL_MODEL_PREFIX):
                ready.setdefault(model["name"], []).append(model.get("version", ""))
        return [await self._describe(name, versions) for name, versions in sorted(ready.items())]

    async def style(self, name: str) -> Style:
        """One style; :class:`StyleNotFound` when no version of it is ready."""
        for style in await self.styles():
            if style.name == name:
                return style
        raise StyleNotFound(name)

    async def _describe(self, name: str, versions: list[str]) -> Style:
        try:
            config = (await self.client.get_model_config(name, as_json=True, client_timeout=5))["config"]
        except InferenceServerException as error:
            raise TritonUnavailable(f"config of {name} unavailable: {error.message()}") from error
        params = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
        ordered = tuple(sorted(versions, key=lambda v: int(v) if v.isdigit() else -1))
        return Style(name=name, versions=ordered, metadata=StyleMetadata.from_parameters(params))

    async def infer(self, style: str, batch: np.ndarray, version: str = "", request_id: str = "") -> InferenceResult:
        """Run ``batch`` (uint8 ``[N, H, W, 3]``) through ``style``."""
        tensor = grpcclient.InferInput(INPUT_NAME, list(batch.shape), TRITON_DTYPE)
        tensor.set_data_from_numpy(batch)
        try:
            result = await self.client.infer(
                style,
                [tensor],
                model_version=version,
                outputs=[grpcclient.InferRequestedOutput(OUTPUT_NAME)],
                request_id=request_id,
                client_timeout=self.timeout_s,
            )
        except InferenceServerException as error:
            message = error.message() or str(error)
            if _is_unavailable(error) or "exceeds maximum queue size" in message:
                self.forget_catalogue()
                raise TritonUnavailable(message) from error
            if "unknown model" in message or "is not found" in message or "unavailable model" in message:
                self.forget_catalogue()
                raise StyleNotFound(style) from error
            raise TritonFailed(message) from error
        return InferenceResult(result.as_numpy(OUTPUT_NAME), result.get_response().model_version)

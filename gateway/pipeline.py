"""The stylize pipeline: cache lookup → decode → (store input ∥ infer) → encode → store output.

HTTP concerns (parsing, auth, responses) stay in ``gateway.routes.stylize``; this module only
knows images, keys, S3 and Triton. CPU work runs on the app's CPU pool, S3 on the storage's I/O
pool, so the event loop only waits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import numpy as np

from gateway.imaging import (
    ALLOWED_FORMATS,
    OUTPUT_FORMATS,
    bucket_shape,
    decode_image,
    encode_image,
    pad_to_shape,
    resize_to_max_side,
)
from gateway.inference import Style, TritonGateway
from gateway.keys import input_key, output_key, result_id, sha256_hex
from gateway.metrics import GatewayMetrics
from gateway.storage import Storage

T = TypeVar("T")

_TIMING_FIELD = {"decode": "decode", "triton": "queue_infer", "encode": "encode", "storage": "storage"}
"""Metric stage label → :class:`Timings` field."""


async def both(first: Any, second: Any) -> tuple[Any, Any]:
    """Await two coroutines concurrently; if one fails the other is cancelled and the error re-raised."""
    try:
        async with asyncio.TaskGroup() as group:
            a = group.create_task(first)
            b = group.create_task(second)
    except ExceptionGroup as group:
        raise group.exceptions[0] from None
    return a.result(), b.result()


@dataclass(frozen=True)
class StylizeRequest:
    """Everything that determines a result (and so its cache key), plus who asked."""

    tenant: str
    data: bytes
    style: Style
    version: str
    max_side: int
    output_format: str
    quality: int
    request_id: str

    def key_parameters(self) -> dict[str, str | int]:
        """Output-affecting parameters; ``quality`` only counts for lossy formats."""
        quality = self.quality if self.output_format != "png" else 0
        return {"max_side": self.max_side, "format": self.output_format, "quality": quality}


@dataclass(frozen=True)
class Prepared:
    """An image resized and padded to its shape bucket, ready to send as a batch of one."""

    batch: np.ndarray
    height: int
    width: int
    source_format: str
    source_height: int
    source_width: int


@dataclass
class Timings:
    """Seconds spent per stage; ``storage`` sums the S3 calls (the input upload overlaps inference)."""

    decode: float = 0.0
    queue_infer: float = 0.0
    encode: float = 0.0
    storage: float = 0.0

    def as_ms(self) -> dict[str, float]:
        return {name: round(value * 1000, 2) for name, value in vars(self).items()}


@dataclass(frozen=True)
class StylizeOutcome:
    """A stored result."""

    result_id: str
    input_key: str
    output_key: str
    input_sha256: str
    model_version: str
    cache_hit: bool
    content_type: str
    width: int
    height: int
    input_width: int
    input_height: int
    body: bytes | None
    """The encoded output; ``None`` on a cache hit when the caller only needs its keys."""
    timings: Timings = field(default_factory=Timings)


def prepare(data: bytes, max_pixels: int, max_side: int, buckets: tuple[int, ...], multiple: int) -> Prepared:
    """Decode, shrink to ``max_side`` and pad to the shape bucket (pure CPU work)."""
    decoded = decode_image(data, max_pixels)
    source_height, source_width = decoded.pixels.shape[:2]
    pixels = resize_to_max_side(decoded.pixels, max_side)
    height, width = pixels.shape[:2]
    padded = pad_to_shape(pixels, *bucket_shape(height, width, buckets, multiple))
    return Prepared(padded[np.newaxis], height, width, decoded.format, source_height, source_width)


def crop_and_encode(pixels: np.ndarray, height: int, width: int, output_format: str, quality: int) -> bytes:
    """Crop the padding off Triton's output and encode it."""
    return encode_image(pixels[0, :height, :width], output_format, quality)


class Stylizer:
    """Runs one request through cache, Triton and S3."""

    def __init__(self, triton: TritonGateway, storage: Storage, cpu: Executor, metrics: GatewayMetrics,
                 max_pixels: int, buckets: tuple[int, ...]) -> None:
        self.triton = triton
        self.storage = storage
        self.cpu = cpu
        self.metrics = metrics
        self.max_pixels = max_pixels
        self.buckets = buckets

    async def _cpu(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.cpu, partial(function, *args))

    async def _timed(self, stage: str, timings: Timings, awaitable: Any) -> Any:
        started = time.perf_counter()
        try:
            return await awaitable
        finally:
            elapsed = time.perf_counter() - started
            name = _TIMING_FIELD[stage]
            setattr(timings, name, getattr(timings, name) + elapsed)
            self.metrics.stage_latency.labels(stage).observe(elapsed)

    async def run(self, request: StylizeRequest, want_body: bool) -> StylizeOutcome:
        """The stored result for ``request``, from the cache when an identical one exists.

        Raises ``ImageRejected`` before anything is stored, ``StorageUnavailable`` /
        ``TritonUnavailable`` / ``TritonFailed`` / ``StyleNotFound`` from the services.
        """
        timings = Timings()
        input_sha = await self._cpu(sha256_hex, request.data)
        in_key = input_key(request.tenant, input_sha)
        ext = request.output_format
        out_key = output_key(request.tenant, input_sha, request.style.name, request.version, request.key_parameters(), ext)
        content_type = OUTPUT_FORMATS[ext][1]

        head = await self._timed("storage", timings, self.storage.head(out_key))
        if head is not None:
            self.metrics.cache.labels("hit").inc()
            body = None
            if want_body:
                body = (await self._timed("storage", timings, self.storage.get(out_key))).body
            meta = head.metadata
            return StylizeOutcome(
                result_id(out_key), in_key, out_key, input_sha, meta.get("model-version", request.version), True,
                head.content_type or content_type, int(meta.get("width", 0)), int(meta.get("height", 0)),
                int(meta.get("input-width", 0)), int(meta.get("input-height", 0)), body, timings,
            )
        self.metrics.cache.labels("miss").inc()

        multiple = request.style.metadata.size_multiple
        prepared: Prepared = await self._timed(
            "decode", timings,
            self._cpu(prepare, request.data, self.max_pixels, request.max_side, self.buckets, multiple),
        )
        shape = prepared.batch.shape
        self.metrics.bucket_shapes.labels(request.style.name, f"{shape[1]}x{shape[2]}").inc()
        self.metrics.padding_ratio.observe(shape[1] * shape[2] / (prepared.height * prepared.width))

        common = {"style": request.style.name, "request-id": request.request_id}
        store_input = self._timed("storage", timings, self.storage.put(
            in_key, request.data, ALLOWED_FORMATS[prepared.source_format],
            {**common, "width": str(prepared.source_width), "height": str(prepared.source_height)},
        ))
        infer = self._timed("triton", timings, self.triton.infer(
            request.style.name, prepared.batch, version=request.version, request_id=request.request_id,
        ))
        # The input upload overlaps inference; both must succeed before anything is answered.
        _, result = await both(store_input, infer)

        body = await self._timed("encode", timings, self._cpu(
            crop_and_encode, result.pixels, prepared.height, prepared.width, ext, request.quality,
        ))
        metadata = {
            **common, "model-version": result.model_version, "input-sha256": input_sha,
            "width": str(prepared.width), "height": str(prepared.height),
            "input-width": str(prepared.source_width), "input-height": str(prepared.source_height),
            **{f"param-{k}": str(v) for k, v in request.key_parameters().items()},
        }
        await self._timed("storage", timings, self.storage.put(out_key, body, content_type, metadata))
        return StylizeOutcome(
            result_id(out_key), in_key, out_key, input_sha, result.model_version, False, content_type,
            prepared.width, prepared.height, prepared.source_width, prepared.source_height, body, timings,
        )

"""The job worker that runs inside every gateway process (started by the app's lifespan).

It lists the S3 queue, claims claimable jobs (see :mod:`gateway.jobs`), renders each item on
Triton (resized to ``max_side``, or at full resolution by tiles), stores content-addressed
outputs, records per-item status, delivers the signed webhook, and finally removes the queue
marker. Any number of gateway processes can share one bucket.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass

import httpx
import numpy as np

from gateway.imaging import ImageRejected, decode_image, encode_png, pad_to_shape, resize_to_max_side, round_up
from gateway.inference import Style, StyleNotFound, TritonFailed, TritonGateway, TritonUnavailable
from gateway.jobs import TERMINAL, Claim, ErrorInfo, JobRecord, JobStatus, JobStore, LeaseLost, job_document
from gateway.keys import output_key, sha256_hex
from gateway.settings import GatewaySettings, JobSettings
from gateway.storage import Storage, StorageUnavailable
from gateway.tiling import blend, crop, plan_tiles
from gateway.webhooks import deliver_once, sleep_backoff, tenant_secret

logger = logging.getLogger("pastiche.gateway.worker")


class ItemFailed(Exception):
    """This item cannot be processed (bad input, unknown style); the job goes on with the others."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.info = ErrorInfo(code=code, message=message)


@dataclass(frozen=True)
class RenderPlan:
    """How one image is rendered and the parameters that name its output."""

    tile_side: int | None
    max_side: int
    overlap: int

    def key_params(self) -> dict[str, str | int]:
        if self.tile_side is not None:
            return {"mode": "tiled", "tile_side": self.tile_side, "overlap": self.overlap, "format": "png"}
        return {"max_side": self.max_side, "format": "png"}


def render_plan(record: JobRecord, style: Style, overlap: int) -> RenderPlan:
    """Resolve the request's sizing against what the style allows."""
    meta = style.metadata
    request = record.request
    if request.tile:
        side = min(request.tile_side or meta.max_side, meta.max_side)
        side = max(meta.size_multiple, side - side % meta.size_multiple)
        return RenderPlan(tile_side=side, max_side=0, overlap=min(overlap, side // 2))
    return RenderPlan(tile_side=None, max_side=min(request.max_side or meta.preferred_side, meta.max_side), overlap=0)


async def infer_padded(triton: TritonGateway, style: str, version: str, batch: np.ndarray,
                       multiple: int, request_id: str) -> tuple[np.ndarray, str]:
    """Pad a ``[N, H, W, 3]`` batch to the style's size multiple, infer, crop back."""
    height, width = batch.shape[1:3]
    padded_h, padded_w = round_up(height, multiple), round_up(width, multiple)
    if (padded_h, padded_w) != (height, width):
        batch = np.stack([pad_to_shape(image, padded_h, padded_w) for image in batch])
    result = await triton.infer(style, np.ascontiguousarray(batch), version=version, request_id=request_id)
    return result.pixels[:, :height, :width], result.model_version


async def render(triton: TritonGateway, style: Style, version: str, pixels: np.ndarray,
                 plan: RenderPlan, request_id: str, tile_batch: int = 4) -> tuple[np.ndarray, str]:
    """Stylize an RGB image according to ``plan``; returns pixels and the model version used."""
    multiple = style.metadata.size_multiple
    if plan.tile_side is None:
        small = await asyncio.to_thread(resize_to_max_side, pixels, plan.max_side)
        out, served = await infer_padded(triton, style.name, version, small[np.newaxis], multiple, request_id)
        return out[0], served
    height, width = pixels.shape[:2]
    tiles = plan_tiles(height, width, plan.tile_side, plan.overlap)
    outputs: list[np.ndarray] = []
    served = version
    for start in range(0, len(tiles), tile_batch):
        chunk = np.stack([crop(pixels, tile) for tile in tiles[start:start + tile_batch]])
        out, served = await infer_padded(triton, style.name, version, chunk, multiple, request_id)
        outputs.extend(out)
    return await asyncio.to_thread(blend, tiles, outputs, height, width, plan.overlap), served


class Worker:
    """Claims and runs jobs until stopped; ``wake()`` skips the poll wait after a local submission."""

    def __init__(self, store: JobStore, storage: Storage, triton: TritonGateway,
                 settings: GatewaySettings, job_settings: JobSettings) -> None:
        self.store = store
        self.storage = storage
        self.triton = triton
        self.settings = settings
        self.job_settings = job_settings
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._active: set[tuple[str, str]] = set()
        self._http = httpx.AsyncClient(follow_redirects=False)

    def start(self) -> None:
        """Start ``worker_concurrency`` loops on the running event loop."""
        self._tasks = [asyncio.create_task(self._loop(), name=f"job-worker-{n}")
                       for n in range(self.job_settings.worker_concurrency)]

    async def stop(self) -> None:
        """Cancel the loops; held leases simply expire and another worker takes over."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._http.aclose()

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                worked = await self.run_once()
            except asyncio.CancelledError:
                raise
            except (StorageUnavailable, TritonUnavailable) as error:
                logger.warning("job worker waiting for its dependencies: %s", error)
                worked = False
            except Exception:  # a bug must not stop the worker; the job stays queued for another try
                logger.exception("job worker iteration failed")
                worked = False
            if not worked:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.job_settings.poll_interval_s)
                except TimeoutError:
                    pass

    async def run_once(self) -> bool:
        """Claim and run at most one job; whether one was run."""
        for tenant, job_id in await self.store.queued():
            if (tenant, job_id) in self._active:
                continue
            self._active.add((tenant, job_id))
            try:
                claim = await self.store.try_claim(tenant, job_id, self.owner, self.job_settings.lease_s)
                if claim is None:
                    continue
                await self.run(claim)
                return True
            finally:
                self._active.discard((tenant, job_id))
        return False

    async def run(self, claim: Claim) -> None:
        """Work on a claimed job until done, keeping the lease alive meanwhile."""
        heartbeat = asyncio.create_task(claim.heartbeat_forever())
        try:
            await self._process(claim)
            if claim.record.webhook is not None and claim.record.webhook.pending:
                await self._deliver(claim)
            await self.store.dequeue(claim.record.tenant, claim.record.id)
            await claim.update(release=True)
        except LeaseLost:
            logger.warning("job %s was taken over by another worker", claim.record.id)
        except (StorageUnavailable, TritonUnavailable) as error:
            # Transient outage: hand the job back for later without spending one of its attempts
            # (attempts count only claims that ended in a dead worker), backing off per pause.
            logger.warning("job %s paused: %s", claim.record.id, error)

            def pause(job: JobRecord) -> None:
                job.attempts -= 1
                job.pauses += 1
                job.not_before = time.time() + min(60.0, self.job_settings.poll_interval_s * 2 ** job.pauses)
            try:
                await claim.update(pause, release=True)
            except (LeaseLost, StorageUnavailable):
                pass
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)

    async def _process(self, claim: Claim) -> None:
        record = claim.record
        if record.status in TERMINAL:
            return
        if record.attempts > self.job_settings.max_attempts:
            def abandon(job: JobRecord) -> None:
                for item in job.items:
                    if item.status not in TERMINAL:
                        item.status = JobStatus.failed
                        item.error = ErrorInfo(code="abandoned", message=f"gave up after {job.attempts - 1} attempts")
                job.finish(time.time())
            await claim.update(abandon)
            return
        await claim.update(lambda job: setattr(job, "status", JobStatus.running))
        try:
            style = await self.triton.style(record.request.style)
        except StyleNotFound:
            style = None
        for index in range(len(record.items)):
            if claim.record.items[index].status in TERMINAL:
                continue
            try:
                if style is None:
                    raise ItemFailed("style_not_found", f"no style named {record.request.style!r} is being served")
                done = await self._render_item(claim.record, index, style)
            except ItemFailed as failure:
                def fail(job: JobRecord, index: int = index, info: ErrorInfo = failure.info) -> None:
                    job.items[index].status = JobStatus.failed
                    job.items[index].error = info
                await claim.update(fail)
                continue

            def succeed(job: JobRecord, index: int = index, done: dict[str, object] = done) -> None:
                item = job.items[index]
                item.status = JobStatus.succeeded
                for field, value in done.items():
                    setattr(item, field, value)
            await claim.update(succeed)
        await claim.update(lambda job: job.finish(time.time()))

    async def _render_item(self, record: JobRecord, index: int, style: Style) -> dict[str, object]:
        item = record.items[index]
        request_id = f"{record.id}-{index}"
        try:
            stored = await self.storage.get(item.input_key)
        except KeyError as error:
            raise ItemFailed("input_not_found", f"no object at {item.input_key!r}") from error
        try:
            decoded = await asyncio.to_thread(decode_image, stored.body, self.settings.max_pixels)
        except ImageRejected as error:
            raise ItemFailed(error.code, error.message) from error
        plan = render_plan(record, style, self.job_settings.tile_overlap)
        version = record.request.version or style.live_version
        try:
            pixels, served = await render(self.triton, style, version, decoded.pixels, plan, request_id)
        except StyleNotFound as error:
            raise ItemFailed("style_not_found", f"style {style.name!r} version {version} is not served") from error
        except TritonFailed as error:
            raise ItemFailed("inference_failed", f"Triton rejected the image: {error}") from error
        png = await asyncio.to_thread(encode_png, np.ascontiguousarray(pixels))
        key = output_key(record.tenant, sha256_hex(stored.body), style.name, served, plan.key_params(), "png")
        # Content-addressed: a takeover that repeats this item overwrites the same object.
        await self.storage.put(key, png, "image/png", {"job-id": record.id, "style": style.name, "version": served})
        return {"output_key": key, "model_version": served, "processed_by": self.owner,
                "width": int(pixels.shape[1]), "height": int(pixels.shape[0])}

    async def _deliver(self, claim: Claim) -> None:
        """Deliver the completion webhook, retrying with exponential backoff; the lease stays held."""
        secret = await tenant_secret(self.store, claim.record.tenant)
        settings = self.job_settings
        while claim.record.webhook is not None and claim.record.webhook.pending:
            webhook = claim.record.webhook
            document = job_document(claim.record, lambda key: self.storage.presign(key, settings.result_url_ttl_s))
            body = json.dumps(document, separators=(",", ":")).encode()
            event = f"job.{claim.record.status.value}"
            outcome = await deliver_once(self._http, webhook.url, secret, body, event,
                                         f"{claim.record.id}-{webhook.attempts + 1}", settings.webhook_timeout_s,
                                         settings.webhook_allow_private)
            attempts = webhook.attempts + 1

            def record_attempt(job: JobRecord) -> None:
                assert job.webhook is not None
                job.webhook.attempts = attempts
                job.webhook.last_error = None if outcome.ok else outcome.detail
                if outcome.ok:
                    job.webhook.delivered_at = time.time()
                elif not outcome.retry or attempts >= settings.webhook_max_attempts:
                    job.webhook.given_up = True
            await claim.update(record_attempt)
            if claim.record.webhook is not None and claim.record.webhook.pending:
                await sleep_backoff(attempts, settings.webhook_backoff_s)

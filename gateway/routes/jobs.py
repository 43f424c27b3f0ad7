"""Async jobs: ``POST /v1/jobs`` (upload or S3 keys), ``POST /v1/jobs/batch`` (many S3 keys),
``GET /v1/jobs/{id}``, the result bytes, and the tenant's webhook signing secret."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Header, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, HttpUrl

from gateway.deps import (
    bearer_scheme,
    get_gateway_settings,
    get_job_settings_dep,
    get_storage,
    get_tenant,
    get_triton,
)
from gateway.errors import APIError
from gateway.imaging import ALLOWED_FORMATS, ImageRejected, decode_image
from gateway.inference import StyleNotFound, TritonGateway, TritonUnavailable
from gateway.jobs import (
    IdempotencyConflict,
    JobNotFound,
    JobRequest,
    JobStore,
    job_document,
    new_record,
)
from gateway.keys import input_key as upload_input_key
from gateway.keys import sha256_hex, tenant_prefix
from gateway.middleware import BodyTooLarge
from gateway.routes.stylize import storage_unavailable
from gateway.settings import GatewaySettings, JobSettings
from gateway.storage import Storage, StorageUnavailable
from gateway.webhooks import WebhookDestinationRefused, check_destination, tenant_secret

router = APIRouter(prefix="/v1", tags=["jobs"], dependencies=[Depends(bearer_scheme)])

IDEMPOTENCY_HELP = "Retrying with the same key returns the same job instead of creating another."


class BatchSubmission(BaseModel):
    """A job over objects the tenant already stored: no re-upload."""

    style: str = Field(description="Style name, as listed by GET /v1/styles.")
    input_keys: list[str] = Field(min_length=1, description="S3 keys under the tenant's prefix.")
    version: str = Field("", description="Model version; empty for the live one.")
    max_side: int | None = Field(None, ge=16, le=8192, description="Resize so the longer side is at most this.")
    tile: bool = Field(False, description="Full resolution by overlapping tiles (ignores max_side).")
    tile_side: int | None = Field(None, ge=64, le=8192, description="Tile side; at most the style's max_side.")
    webhook_url: HttpUrl | None = Field(None, description="Receives the signed job document when it finishes.")


CHUNK = 1024 * 1024


async def read_limited(upload: UploadFile, limit: int) -> bytes:
    """Read an upload, refusing with 413 as soon as it passes ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    try:
        while chunk := await upload.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise APIError(413, "payload_too_large", f"the image is larger than {limit} bytes")
            parts.append(chunk)
    except BodyTooLarge as error:
        raise APIError(413, "payload_too_large", f"the request body exceeds {limit} bytes") from error
    return b"".join(parts)


def get_job_store(request: Request) -> JobStore:
    return request.app.state.job_store


def idempotency(value: str | None) -> str | None:
    if value is not None and not 1 <= len(value) <= 255:
        raise APIError(422, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 characters")
    return value


async def check_style(triton: TritonGateway, style: str) -> None:
    """404 for a style that is not served; an unreachable Triton does not block queueing."""
    try:
        await triton.style(style)
    except StyleNotFound as error:
        raise APIError(404, "style_not_found", f"no style named {style!r} is being served") from error
    except TritonUnavailable:
        pass


def owned_keys(tenant: str, keys: list[str], limit: int) -> list[str]:
    """Keys under the tenant's prefix; another tenant's key is answered as not found."""
    if len(keys) > limit:
        raise APIError(413, "too_many_inputs", f"{len(keys)} inputs; at most {limit} per job")
    prefix = tenant_prefix(tenant)
    foreign = [key for key in keys if not key.startswith(prefix) or len(key) > 1024]
    if foreign:
        raise APIError(404, "input_not_found", f"no such input object: {foreign[0]!r}")
    return keys


async def check_webhook(url: HttpUrl | None, settings: JobSettings) -> None:
    """422 for a webhook URL the gateway must not call (see :func:`gateway.webhooks.check_destination`)."""
    if url is None:
        return
    try:
        await check_destination(str(url), settings.webhook_allow_private)
    except WebhookDestinationRefused as error:
        raise APIError(422, "webhook_url_refused", str(error)) from error


async def submit(request: Request, store: JobStore, storage: Storage, settings: JobSettings,
                 tenant: str, job_request: JobRequest, keys: list[str], idempotency_key: str | None) -> JSONResponse:
    record = new_record(tenant, job_request, keys)
    try:
        record, created = await store.submit(record, idempotency_key)
    except IdempotencyConflict as error:
        raise APIError(409, "idempotency_key_reused",
                       f"Idempotency-Key was already used for a different request (job {error.job_id})") from error
    except StorageUnavailable as error:
        raise storage_unavailable(error) from error
    worker = getattr(request.app.state, "worker", None)
    if worker is not None:
        worker.wake()
    headers = {"Location": f"/v1/jobs/{record.id}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    body = job_document(record, lambda key: storage.presign(key, settings.result_url_ttl_s))
    return JSONResponse(body, status_code=202 if created else 200, headers=headers)


@router.post("/jobs", status_code=202, summary="Queue a job for an uploaded image or stored S3 keys")
async def create_job(
    request: Request,
    style: Annotated[str, Form(description="Style name, as listed by GET /v1/styles.")],
    triton: Annotated[TritonGateway, Depends(get_triton)],
    storage: Annotated[Storage, Depends(get_storage)],
    store: Annotated[JobStore, Depends(get_job_store)],
    settings: Annotated[GatewaySettings, Depends(get_gateway_settings)],
    job_settings: Annotated[JobSettings, Depends(get_job_settings_dep)],
    tenant: Annotated[str, Depends(get_tenant)],
    image: Annotated[UploadFile | None, Form(description="JPEG, PNG or WebP image.")] = None,
    input_key: Annotated[list[str] | None, Form(description="S3 key(s) the tenant owns (repeatable).")] = None,
    version: Annotated[str, Form()] = "",
    max_side: Annotated[int | None, Form(ge=16, le=8192)] = None,
    tile: Annotated[bool, Form(description="Full resolution by overlapping tiles.")] = False,
    tile_side: Annotated[int | None, Form(ge=64, le=8192)] = None,
    webhook_url: Annotated[HttpUrl | None, Form()] = None,
    idempotency_key: Annotated[str | None, Header(description=IDEMPOTENCY_HELP)] = None,
) -> JSONResponse:
    idempotency_key = idempotency(idempotency_key)
    if (image is None) == (not input_key):
        raise APIError(422, "invalid_request", "send either an image upload or one or more input_key fields")
    await check_style(triton, style)
    await check_webhook(webhook_url, job_settings)
    if image is not None:
        data = await read_limited(image, settings.max_upload_bytes)
        try:
            decoded = await asyncio.to_thread(decode_image, data, settings.max_pixels)
        except ImageRejected as error:
            raise APIError(error.status, error.code, error.message) from error
        key = upload_input_key(tenant, sha256_hex(data))
        try:
            await storage.put(key, data, ALLOWED_FORMATS[decoded.format], {"source": "job-upload"})
        except StorageUnavailable as error:
            raise storage_unavailable(error) from error
        keys = [key]
    else:
        keys = owned_keys(tenant, input_key or [], job_settings.max_items)
    job_request = JobRequest(style=style, version=version, max_side=max_side, tile=tile, tile_side=tile_side,
                             webhook_url=str(webhook_url) if webhook_url else None)
    return await submit(request, store, storage, job_settings, tenant, job_request, keys, idempotency_key)


@router.post("/jobs/batch", status_code=202, summary="Queue one job over many stored S3 keys")
async def create_batch_job(
    request: Request,
    submission: BatchSubmission,
    triton: Annotated[TritonGateway, Depends(get_triton)],
    storage: Annotated[Storage, Depends(get_storage)],
    store: Annotated[JobStore, Depends(get_job_store)],
    job_settings: Annotated[JobSettings, Depends(get_job_settings_dep)],
    tenant: Annotated[str, Depends(get_tenant)],
    idempotency_key: Annotated[str | None, Header(description=IDEMPOTENCY_HELP)] = None,
) -> JSONResponse:
    idempotency_key = idempotency(idempotency_key)
    await check_style(triton, submission.style)
    await check_webhook(submission.webhook_url, job_settings)
    keys = owned_keys(tenant, submission.input_keys, job_settings.max_items)
    job_request = JobRequest(
        style=submission.style, version=submission.version, max_side=submission.max_side, tile=submission.tile,
        tile_side=submission.tile_side, webhook_url=str(submission.webhook_url) if submission.webhook_url else None,
    )
    return await submit(request, store, storage, job_settings, tenant, job_request, keys, idempotency_key)


async def load_job(store: JobStore, tenant: str, job_id: str) -> Any:
    try:
        record, _ = await store.get(tenant, job_id)
    except ValueError as error:  # an id that cannot be a key segment cannot name a job
        raise APIError(404, "job_not_found", f"no job {job_id!r}") from error
    except JobNotFound as error:
        raise APIError(404, "job_not_found", f"no job {job_id!r}") from error
    except StorageUnavailable as error:
        raise storage_unavailable(error) from error
    return record


@router.get("/jobs/{job_id}", summary="Status, per-item results (keys, presigned URLs) or errors")
async def get_job(
    job_id: str,
    storage: Annotated[Storage, Depends(get_storage)],
    store: Annotated[JobStore, Depends(get_job_store)],
    job_settings: Annotated[JobSettings, Depends(get_job_settings_dep)],
    tenant: Annotated[str, Depends(get_tenant)],
) -> JSONResponse:
    record = await load_job(store, tenant, job_id)
    return JSONResponse(job_document(record, lambda key: storage.presign(key, job_settings.result_url_ttl_s)))


@router.get(
    "/jobs/{job_id}/items/{index}/output",
    summary="The stylized image of one item",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
async def get_job_output(
    job_id: str,
    index: int,
    storage: Annotated[Storage, Depends(get_storage)],
    store: Annotated[JobStore, Depends(get_job_store)],
    tenant: Annotated[str, Depends(get_tenant)],
) -> Response:
    record = await load_job(store, tenant, job_id)
    if not 0 <= index < len(record.items):
        raise APIError(404, "item_not_found", f"job {job_id} has {len(record.items)} item(s)")
    item = record.items[index]
    if item.output_key is None:
        raise APIError(409, "output_not_ready", f"item {index} is {item.status.value}")
    try:
        stored = await storage.get(item.output_key)
    except KeyError as error:
        raise APIError(404, "output_not_found", "the output object no longer exists") from error
    except StorageUnavailable as error:
        raise storage_unavailable(error) from error
    return Response(stored.body, media_type=stored.content_type,
                    headers={"Cache-Control": "private, max-age=3600", "X-Pastiche-Output-Key": item.output_key})


@router.get("/webhooks/secret", summary="The tenant's webhook signing secret (created on first use)")
async def get_webhook_secret(
    store: Annotated[JobStore, Depends(get_job_store)],
    tenant: Annotated[str, Depends(get_tenant)],
) -> dict[str, str]:
    try:
        return {"secret": await tenant_secret(store, tenant), "algorithm": "HMAC-SHA256"}
    except StorageUnavailable as error:
        raise storage_unavailable(error) from error

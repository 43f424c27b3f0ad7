"""``POST /v1/stylize``: parse and validate, then run the pipeline under an in-flight slot."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.deps import bearer_scheme, get_gateway_settings, get_metrics, get_storage, get_tenant, get_triton
from gateway.errors import APIError
from gateway.imaging import ImageRejected
from gateway.inference import Style, StyleNotFound, TritonFailed, TritonGateway, TritonUnavailable
from gateway.metrics import GatewayMetrics
from gateway.middleware import BodyTooLarge
from gateway.pipeline import StylizeOutcome, StylizeRequest, Stylizer
from gateway.routes.styles import unavailable
from gateway.settings import GatewaySettings
from gateway.storage import Storage, StorageUnavailable

router = APIRouter(prefix="/v1", tags=["stylize"], dependencies=[Depends(bearer_scheme)])
logger = logging.getLogger("pastiche.gateway")

IMAGE_FIELD = "image"
RAW_TYPES = {"image/jpeg", "image/png", "image/webp"}


class StylizeParams(BaseModel, extra="forbid"):
    """Request parameters, from the query string or (multipart) form fields."""

    style: str = Field(min_length=1, max_length=128, description="Style name, as listed by GET /v1/styles.")
    version: str | None = Field(None, pattern=r"^[0-9]{1,9}$", description="Model version; the live version if omitted.")
    max_side: int | None = Field(None, ge=16, description="Long side of the result; the style's preferred side if omitted.")
    format: Literal["png", "jpeg", "webp"] = Field("png", description="Encoding of the result.")
    quality: int = Field(90, ge=1, le=100, description="JPEG/WebP quality.")


class ImageInfo(BaseModel):
    key: str
    url: str
    content_type: str | None = None
    sha256: str | None = None
    width: int
    height: int


class StylizeResult(BaseModel):
    """The ``Accept: application/json`` response."""

    result_id: str
    request_id: str
    style: str
    model_version: str
    cache: Literal["hit", "miss"]
    input: ImageInfo
    output: ImageInfo
    url_expires_in_s: int
    timings_ms: dict[str, float]


def storage_unavailable(error: StorageUnavailable) -> APIError:
    """503 with ``Retry-After`` for an S3 that is down: nothing is answered that was not stored."""
    return APIError(503, "storage_unavailable", str(error), {"Retry-After": "5"})


async def read_raw_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise APIError(413, "payload_too_large", f"the request body exceeds {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


async def read_upload(request: Request, limit: int) -> tuple[bytes, dict[str, str]]:
    """Image bytes and parameters from a multipart form or a raw image body (415 otherwise)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    params = dict(request.query_params)
    try:
        if content_type == "multipart/form-data":
            try:
                form = await request.form(max_files=1, max_fields=16)
            except StarletteHTTPException as error:
                raise APIError(400, "malformed_body", f"the multipart body could not be parsed: {error.detail}") from error
            upload = form.get(IMAGE_FIELD)
            fields = {key: value for key, value in form.multi_items() if key != IMAGE_FIELD}
            files = [key for key, value in fields.items() if not isinstance(value, str)]
            if files:
                raise APIError(422, "invalid_request", f"unexpected file field(s) {files}; send the image as '{IMAGE_FIELD}'")
            if not isinstance(upload, UploadFile):
                raise APIError(422, "invalid_request", f"the multipart form has no file field '{IMAGE_FIELD}'")
            params.update({key: str(value) for key, value in fields.items()})
            return await upload.read(), params
        if content_type in RAW_TYPES:
            return await read_raw_body(request, limit), params
    except BodyTooLarge as error:
        raise APIError(413, "payload_too_large", f"the request body exceeds {limit} bytes") from error
    raise APIError(
        415, "unsupported_media_type",
        "send multipart/form-data with an 'image' file, or a raw body with Content-Type image/jpeg, image/png or image/webp",
    )


def validate_params(raw: dict[str, str]) -> StylizeParams:
    """:class:`StylizeParams` or 422 naming every problem."""
    try:
        return StylizeParams.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in item['loc']) or 'params'}: {item['msg']}" for item in error.errors())
        raise APIError(422, "invalid_parameters", problems) from error


async def resolve_style(triton: TritonGateway, params: StylizeParams) -> tuple[Style, str, int]:
    """The style, the version to run and the max side; 404 for unknown style/version, 422 for a bad size."""
    try:
        style = await triton.style(params.style)
    except StyleNotFound as error:
        raise APIError(404, "style_not_found", f"no style named {params.style!r} is being served") from error
    except TritonUnavailable as error:
        raise unavailable(error) from error
    version = params.version or style.live_version
    if version not in style.versions:
        raise APIError(404, "version_not_found", f"style {style.name!r} has no ready version {version}; ready: {list(style.versions)}")
    max_side = params.max_side or style.metadata.preferred_side
    if max_side > style.metadata.max_side:
        raise APIError(422, "invalid_parameters", f"max_side {max_side} exceeds this style's limit of {style.metadata.max_side}")
    return style, version, max_side


async def until_disconnect(request: Request) -> None:
    """Return when the client goes away (the body has been read, so the next message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def run_unless_disconnected(request: Request, work: asyncio.Future, metrics: GatewayMetrics) -> StylizeOutcome | None:
    """The work's result, or ``None`` after cancelling it (and its Triton call) when the client left."""
    watcher = asyncio.ensure_future(until_disconnect(request))
    try:
        done, _ = await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not work.done():
            work.cancel()
    if work in done:
        return work.result()
    metrics.disconnects.inc()
    logger.info("client disconnected; work cancelled")
    return None


def outcome_headers(outcome: StylizeOutcome) -> dict[str, str]:
    """Response headers naming the result (``X-Request-Id`` is added by the middleware)."""
    return {
        "X-Pastiche-Result-Id": outcome.result_id,
        "X-Pastiche-Model-Version": outcome.model_version,
        "X-Pastiche-Cache": "hit" if outcome.cache_hit else "miss",
        "X-Pastiche-Input-Key": outcome.input_key,
        "X-Pastiche-Output-Key": outcome.output_key,
    }


def wants_json(request: Request) -> bool:
    """Whether the client asked for the JSON document instead of the image bytes."""
    accept = request.headers.get("accept", "")
    return any(part.split(";")[0].strip() == "application/json" for part in accept.split(","))


@router.post(
    "/stylize",
    summary="Stylize one image",
    response_class=Response,
    responses={
        200: {
            "description": "The stylized image, or with `Accept: application/json` the result document.",
            "content": {"image/png": {}, "image/jpeg": {}, "image/webp": {},
                        "application/json": {"schema": StylizeResult.model_json_schema()}},
        },
        401: {"description": "Missing or invalid API key."},
        404: {"description": "Unknown style or version."},
        413: {"description": "Body or pixel count over the limit."},
        415: {"description": "Not JPEG/PNG/WebP."},
        422: {"description": "Bad parameters or undecodable image."},
        429: {"description": "Rate limited (see Retry-After)."},
        503: {"description": "Triton or S3 unavailable, or the gateway is full (see Retry-After)."},
    },
    openapi_extra={
        "parameters": [
            {"name": name, "in": "query", "required": name == "style", "schema": schema}
            for name, schema in StylizeParams.model_json_schema()["properties"].items()
        ],
        "requestBody": {
            "required": True,
            "description": "multipart/form-data with an `image` file (parameters may be form fields), "
                           "or the raw image with its Content-Type (parameters in the query string).",
            "content": {
                "multipart/form-data": {"schema": {
                    "type": "object", "required": ["image"],
                    "properties": {"image": {"type": "string", "format": "binary"},
                                   **StylizeParams.model_json_schema()["properties"]},
                }},
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "image/webp": {"schema": {"type": "string", "format": "binary"}},
            },
        },
    },
)
async def stylize(
    request: Request,
    tenant: Annotated[str, Depends(get_tenant)],
    triton: Annotated[TritonGateway, Depends(get_triton)],
    storage: Annotated[Storage, Depends(get_storage)],
    settings: Annotated[GatewaySettings, Depends(get_gateway_settings)],
    metrics: Annotated[GatewayMetrics, Depends(get_metrics)],
) -> Response:
    data, raw_params = await read_upload(request, settings.max_upload_bytes)
    params = validate_params(raw_params)
    style, version, max_side = await resolve_style(triton, params)
    request.state.style = style.name
    request_id: str = request.state.request_id

    slots: asyncio.Semaphore = request.app.state.inflight
    try:
        await asyncio.wait_for(slots.acquire(), settings.queue_wait_s or 0.001)
    except TimeoutError as error:
        metrics.rejections.labels("overloaded").inc()
        raise APIError(503, "overloaded", "the gateway is at its in-flight limit", {"Retry-After": "1"}) from error
    metrics.inflight.inc()
    try:
        stylizer = Stylizer(triton, storage, request.app.state.cpu, metrics, settings.max_pixels, settings.shape_buckets)
        job = StylizeRequest(tenant, data, style, version, max_side, params.format, params.quality, request_id)
        as_json = wants_json(request)
        work = asyncio.ensure_future(stylizer.run(job, want_body=not as_json))
        outcome = await run_unless_disconnected(request, work, metrics)
    except ImageRejected as error:
        raise APIError(error.status, error.code, error.message) from error
    except StyleNotFound as error:
        raise APIError(404, "style_not_found", f"style {style.name!r} version {version} is no longer served") from error
    except TritonUnavailable as error:
        raise unavailable(error) from error
    except TritonFailed as error:
        raise APIError(502, "triton_error", f"Triton failed the request: {error}") from error
    except StorageUnavailable as error:
        raise storage_unavailable(error) from error
    finally:
        metrics.inflight.dec()
        slots.release()

    if outcome is None:
        # Nobody is listening; 499 is what the access log and metrics record.
        return Response(status_code=499)
    request.state.cache = "hit" if outcome.cache_hit else "miss"
    headers = outcome_headers(outcome)
    if not as_json:
        return Response(outcome.body, media_type=outcome.content_type, headers=headers)
    ttl = settings.presign_ttl_s
    document = StylizeResult(
        result_id=outcome.result_id,
        request_id=request_id,
        style=style.name,
        model_version=outcome.model_version,
        cache="hit" if outcome.cache_hit else "miss",
        input=ImageInfo(key=outcome.input_key, url=storage.presign(outcome.input_key, ttl), sha256=outcome.input_sha256,
                        width=outcome.input_width, height=outcome.input_height),
        output=ImageInfo(key=outcome.output_key, url=storage.presign(outcome.output_key, ttl),
                         content_type=outcome.content_type, width=outcome.width, height=outcome.height),
        url_expires_in_s=ttl,
        timings_ms=outcome.timings.as_ms(),
    )
    return JSONResponse(document.model_dump(), headers=headers)

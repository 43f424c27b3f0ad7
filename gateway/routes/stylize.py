"""``POST /v1/stylize``: decode, store the input, run the style on Triton, store and return the output."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Form, UploadFile
from fastapi.responses import Response

from gateway.deps import get_gateway_settings, get_storage, get_tenant, get_triton
from gateway.errors import APIError
from gateway.imaging import ALLOWED_FORMATS, ImageRejected, decode_image, encode_png, pad_to_shape, resize_to_max_side, round_up
from gateway.inference import StyleNotFound, TritonGateway, TritonUnavailable
from gateway.keys import input_key, output_key, sha256_hex
from gateway.routes.styles import unavailable
from gateway.settings import GatewaySettings
from gateway.storage import Storage, StorageUnavailable

router = APIRouter(prefix="/v1", tags=["stylize"])

CHUNK = 1024 * 1024


async def read_limited(upload: UploadFile, limit: int) -> bytes:
    """Read an upload, refusing with 413 as soon as it passes ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    while chunk := await upload.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise APIError(413, "payload_too_large", f"the image is larger than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def storage_unavailable(error: StorageUnavailable) -> APIError:
    return APIError(503, "storage_unavailable", str(error), {"Retry-After": "5"})


@router.post(
    "/stylize",
    summary="Stylize one image",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "The stylized image."}},
)
async def stylize(
    image: Annotated[UploadFile, Form(description="JPEG, PNG or WebP image.")],
    style: Annotated[str, Form(description="Style name, as listed by GET /v1/styles.")],
    triton: Annotated[TritonGateway, Depends(get_triton)],
    storage: Annotated[Storage, Depends(get_storage)],
    settings: Annotated[GatewaySettings, Depends(get_gateway_settings)],
    tenant: Annotated[str, Depends(get_tenant)],
) -> Response:
    request_id = uuid.uuid4().hex
    try:
        served = await triton.style(style)
    except StyleNotFound as error:
        raise APIError(404, "style_not_found", f"no style named {style!r} is being served") from error
    except TritonUnavailable as error:
        raise unavailable(error) from error
    data = await read_limited(image, settings.max_upload_bytes)
    try:
        decoded = await asyncio.to_thread(decode_image, data, settings.max_pixels)
    except ImageRejected as error:
        raise APIError(error.status, error.code, error.message) from error

    input_sha = sha256_hex(data)
    version = served.versions[-1]
    meta = served.metadata
    try:
        await storage.put(
            input_key(tenant, input_sha),
            data,
            ALLOWED_FORMATS[decoded.format],
            {"request-id": request_id, "style": style},
        )
    except StorageUnavailable as error:
        raise storage_unavailable(error) from error

    pixels = await asyncio.to_thread(resize_to_max_side, decoded.pixels, meta.preferred_side)
    height, width = pixels.shape[:2]
    padded = pad_to_shape(pixels, round_up(height, meta.size_multiple), round_up(width, meta.size_multiple))
    try:
        result = await triton.infer(style, padded[np.newaxis], version=version, request_id=request_id)
    except StyleNotFound as error:
        raise APIError(404, "style_not_found", f"style {style!r} version {version} is no longer served") from error
    except TritonUnavailable as error:
        raise unavailable(error) from error
    output = result.pixels[0, :height, :width]
    png = await asyncio.to_thread(encode_png, np.ascontiguousarray(output))

    key = output_key(tenant, input_sha, style, result.model_version, {"max_side": meta.preferred_side, "format": "png"}, "png")
    try:
        await storage.put(key, png, "image/png", {"request-id": request_id, "style": style, "version": result.model_version})
    except StorageUnavailable as error:
        raise storage_unavailable(error) from error
    return Response(
        png,
        media_type="image/png",
        headers={
            "X-Request-Id": request_id,
            "X-Pastiche-Model-Version": result.model_version,
            "X-Pastiche-Input-Key": input_key(tenant, input_sha),
            "X-Pastiche-Output-Key": key,
        },
    )

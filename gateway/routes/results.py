"""``GET /v1/results/{id}``: a stored output of the caller's tenant, streamed or as a redirect."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import RedirectResponse, Response

from gateway.deps import bearer_scheme, get_gateway_settings, get_storage, get_tenant
from gateway.errors import APIError
from gateway.keys import output_key_for_result
from gateway.routes.stylize import storage_unavailable
from gateway.settings import GatewaySettings
from gateway.storage import Storage, StorageUnavailable

router = APIRouter(prefix="/v1", tags=["results"], dependencies=[Depends(bearer_scheme)])


@router.get(
    "/results/{result_id}",
    summary="A stored result of the caller's tenant",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}, "description": "The stored image."},
        307: {"description": "With `redirect=true`: a short-lived presigned S3 URL."},
        404: {"description": "No such result for this tenant."},
    },
)
async def get_result(
    result_id: str,
    tenant: Annotated[str, Depends(get_tenant)],
    storage: Annotated[Storage, Depends(get_storage)],
    settings: Annotated[GatewaySettings, Depends(get_gateway_settings)],
    redirect: Annotated[bool, Query(description="Answer 307 to a presigned URL instead of the bytes.")] = False,
) -> Response:
    not_found = APIError(404, "result_not_found", "no such result")
    try:
        key = output_key_for_result(tenant, result_id)
    except ValueError as error:
        raise not_found from error
    try:
        if redirect:
            if await storage.head(key) is None:
                raise not_found
            return RedirectResponse(storage.presign(key, settings.presign_ttl_s), status_code=307)
        stored = await storage.get(key)
    except KeyError as error:
        raise not_found from error
    except StorageUnavailable as error:
        raise storage_unavailable(error) from error
    headers = {"X-Pastiche-Result-Id": result_id, "X-Pastiche-Model-Version": stored.metadata.get("model-version", ""),
               "Cache-Control": "private, max-age=31536000, immutable"}
    return Response(stored.body, media_type=stored.content_type, headers=headers)

"""The style catalogue, read from Triton's repository index and model config parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from gateway.deps import (
    bearer_scheme,
    get_gateway_settings,
    get_job_settings_dep,
    get_storage,
    get_tenant,
    get_triton,
)
from gateway.errors import APIError
from gateway.inference import Style, StyleNotFound, TritonGateway, TritonUnavailable
from gateway.routes.web import local_preview
from gateway.settings import GatewaySettings, JobSettings
from gateway.storage import Storage

router = APIRouter(prefix="/v1", tags=["styles"], dependencies=[Depends(bearer_scheme), Depends(get_tenant)])


class StyleOut(BaseModel):
    name: str
    title: str
    description: str
    architecture: str
    precision: str
    versions: list[str]
    live_version: str
    size_multiple: int
    preferred_side: int
    max_side: int
    preview_url: str | None = None
    """Before/after preview: presigned from the bucket when the model names one (``preview_key``), else
    this gateway's ``/v1/styles/{name}/preview`` when the style ships a preview file, else null."""

    @classmethod
    def of(cls, style: Style, preview_url: str | None = None) -> StyleOut:
        meta = style.metadata
        return cls(
            name=style.name,
            title=meta.title,
            description=meta.description,
            architecture=meta.architecture,
            precision=meta.precision,
            versions=list(style.versions),
            live_version=style.live_version,
            size_multiple=meta.size_multiple,
            preferred_side=meta.preferred_side,
            max_side=meta.max_side,
            preview_url=preview_url,
        )


class StyleList(BaseModel):
    styles: list[StyleOut]


def unavailable(error: TritonUnavailable) -> APIError:
    """503 with ``Retry-After`` for a Triton that is down or full."""
    return APIError(503, "triton_unavailable", str(error), {"Retry-After": "2"})


def preview_url(
    style: Style, request: Request, storage: Storage, settings: GatewaySettings, job_settings: JobSettings
) -> str | None:
    """The style's before/after picture: presigned from the bucket when the model names one (``preview_key``),
    else this gateway's route for a shipped preview file, else ``None``."""
    if style.metadata.preview_key:
        return storage.presign(style.metadata.preview_key, settings.presign_ttl_s)
    if local_preview(job_settings, style.name):
        return str(request.url_for("style_preview", name=style.name))
    return None


@router.get("/styles", response_model=StyleList, summary="Styles that are ready to serve")
async def list_styles(
    request: Request,
    triton: Annotated[TritonGateway, Depends(get_triton)],
    storage: Annotated[Storage, Depends(get_storage)],
    settings: Annotated[GatewaySettings, Depends(get_gateway_settings)],
    job_settings: Annotated[JobSettings, Depends(get_job_settings_dep)],
) -> StyleList:
    try:
        styles = await triton.styles()
    except TritonUnavailable as error:
        raise unavailable(error) from error
    return StyleList(
        styles=[StyleOut.of(style, preview_url(style, request, storage, settings, job_settings)) for style in styles]
    )


@router.get("/styles/{name}", response_model=StyleOut, summary="One style")
async def get_style(
    name: str,
    request: Request,
    triton: Annotated[TritonGateway, Depends(get_triton)],
    storage: Annotated[Storage, Depends(get_storage)],
    settings: Annotated[GatewaySettings, Depends(get_gateway_settings)],
    job_settings: Annotated[JobSettings, Depends(get_job_settings_dep)],
) -> StyleOut:
    try:
        style = await triton.style(name)
        return StyleOut.of(style, preview_url(style, request, storage, settings, job_settings))
    except StyleNotFound as error:
        raise APIError(404, "style_not_found", f"no style named {name!r} is being served") from error
    except TritonUnavailable as error:
        raise unavailable(error) from error

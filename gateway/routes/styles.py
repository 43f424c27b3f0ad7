"""The style catalogue, read from Triton's repository index and model config parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from gateway.deps import get_triton
from gateway.errors import APIError
from gateway.inference import Style, StyleNotFound, TritonGateway, TritonUnavailable

router = APIRouter(prefix="/v1", tags=["styles"])


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

    @classmethod
    def of(cls, style: Style) -> StyleOut:
        meta = style.metadata
        return cls(
            name=style.name,
            title=meta.title,
            description=meta.description,
            architecture=meta.architecture,
            precision=meta.precision,
            versions=list(style.versions),
            live_version=style.versions[-1] if style.versions else "",
            size_multiple=meta.size_multiple,
            preferred_side=meta.preferred_side,
            max_side=meta.max_side,
        )


class StyleList(BaseModel):
    styles: list[StyleOut]


def unavailable(error: TritonUnavailable) -> APIError:
    return APIError(503, "triton_unavailable", str(error), {"Retry-After": "2"})


@router.get("/styles", response_model=StyleList, summary="Styles that are ready to serve")
async def list_styles(triton: Annotated[TritonGateway, Depends(get_triton)]) -> StyleList:
    try:
        return StyleList(styles=[StyleOut.of(style) for style in await triton.styles()])
    except TritonUnavailable as error:
        raise unavailable(error) from error


@router.get("/styles/{name}", response_model=StyleOut, summary="One style")
async def get_style(name: str, triton: Annotated[TritonGateway, Depends(get_triton)]) -> StyleOut:
    try:
        return StyleOut.of(await triton.style(name))
    except StyleNotFound as error:
        raise APIError(404, "style_not_found", f"no style named {name!r} is being served") from error
    except TritonUnavailable as error:
        raise unavailable(error) from error

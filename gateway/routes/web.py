"""The web page (``GET /``, static files, no build step) and style preview pictures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from gateway.deps import get_job_settings_dep
from gateway.errors import APIError
from gateway.keys import is_safe_segment
from gateway.settings import JobSettings

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(tags=["web"])


def static_files() -> StaticFiles:
    """The page's scripts and styles, mounted at ``/static``."""
    return StaticFiles(directory=STATIC_DIR)


def local_preview(settings: JobSettings, name: str) -> Path | None:
    """``<styles_dir>/<name>/preview.png`` when it exists (``None`` for unsafe names)."""
    if not is_safe_segment(name):
        return None
    path = Path(settings.styles_dir) / name / "preview.png"
    return path if path.is_file() else None


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})


@router.get(
    "/v1/styles/{name}/preview",
    summary="A style's preview picture (export/styles/<style>/preview.png), if one was exported",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}},
)
async def style_preview(name: str, settings: Annotated[JobSettings, Depends(get_job_settings_dep)]) -> FileResponse:
    path = local_preview(settings, name)
    if path is None:
        raise APIError(404, "preview_not_found", f"no preview for style {name!r}")
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "public, max-age=300"})

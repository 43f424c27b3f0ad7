"""Liveness and readiness."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from gateway.deps import get_storage, get_triton
from gateway.inference import TritonGateway, TritonUnavailable
from gateway.storage import Storage, StorageUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Triton has a ready style and S3 is reachable")
async def readyz(
    triton: Annotated[TritonGateway, Depends(get_triton)],
    storage: Annotated[Storage, Depends(get_storage)],
) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        styles = await triton.styles() if await triton.is_ready() else []
        checks["triton"] = "ok" if styles else "no ready model"
    except TritonUnavailable as error:
        checks["triton"] = str(error)
    try:
        await storage.check()
        checks["s3"] = "ok"
    except StorageUnavailable as error:
        checks["s3"] = str(error)
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

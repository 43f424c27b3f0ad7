"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import logging
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.deps import get_gateway_settings, get_metrics, get_storage, get_triton
from gateway.inference import TritonGateway, TritonUnavailable
from gateway.metrics import GatewayMetrics, parse_batch_stats
from gateway.settings import GatewaySettings
from gateway.storage import Storage, StorageUnavailable

router = APIRouter(tags=["health"])
logger = logging.getLogger("pastiche.gateway")


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
    headers = {} if ready else {"Retry-After": "5"}
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503, headers=headers)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(
    settings: Annotated[GatewaySettings, Depends(get_gateway_settings)],
    gateway_metrics: Annotated[GatewayMetrics, Depends(get_metrics)],
) -> Response:
    # Batch efficiency is Triton's own count, read at scrape time so it is never stale.
    if settings.triton_metrics_url:
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                text = (await client.get(settings.triton_metrics_url)).text
            gateway_metrics.record_batch_stats(parse_batch_stats(text))
        except (httpx.HTTPError, ValueError) as error:
            logger.warning("Triton metrics unavailable: %s", error)
    return Response(generate_latest(gateway_metrics.registry), media_type=CONTENT_TYPE_LATEST)

"""FastAPI dependencies: the long-lived clients made in the lifespan, and the caller's tenant."""

from __future__ import annotations

from fastapi import Request

from gateway.inference import TritonGateway
from gateway.settings import GatewaySettings
from gateway.storage import Storage


def get_triton(request: Request) -> TritonGateway:
    return request.app.state.triton


def get_storage(request: Request) -> Storage:
    return request.app.state.storage


def get_gateway_settings(request: Request) -> GatewaySettings:
    return request.app.state.settings


def get_tenant(request: Request) -> str:
    """The caller's tenant (the default tenant until API keys are configured)."""
    return request.app.state.settings.default_tenant

"""FastAPI dependencies: the long-lived clients made in the lifespan, and the caller's tenant."""

from __future__ import annotations

from fastapi import Request
from fastapi.security import HTTPBearer

from gateway.auth import ApiKey, RateLimiter, bearer_token, hash_key, retry_after_header
from gateway.errors import APIError
from gateway.inference import TritonGateway
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings, JobSettings, get_job_settings
from gateway.storage import Storage

bearer_scheme = HTTPBearer(auto_error=False, description="API key, sent as `Authorization: Bearer <key>`.")


def get_triton(request: Request) -> TritonGateway:
    return request.app.state.triton


def get_storage(request: Request) -> Storage:
    return request.app.state.storage


def get_gateway_settings(request: Request) -> GatewaySettings:
    return request.app.state.settings


def get_job_settings_dep(request: Request) -> JobSettings:
    """The app's job settings (set by tests), else the environment's."""
    return getattr(request.app.state, "job_settings", None) or get_job_settings()


def get_metrics(request: Request) -> GatewayMetrics:
    return request.app.state.metrics


def get_tenant(request: Request) -> str:
    """The caller's tenant from its API key, after the key's rate limit; open mode uses the default tenant.

    Missing or unknown key → 401; over the key's rate → 429 with ``Retry-After``.
    """
    keys: dict[str, ApiKey] = request.app.state.api_keys
    metrics: GatewayMetrics = request.app.state.metrics
    if not keys:
        tenant = request.app.state.settings.default_tenant
        request.state.tenant = tenant
        return tenant
    token = bearer_token(request.headers.get("authorization"))
    challenge = {"WWW-Authenticate": 'Bearer realm="pastiche"'}
    if token is None:
        metrics.rejections.labels("unauthenticated").inc()
        raise APIError(401, "unauthenticated", "send an API key as 'Authorization: Bearer <key>'", challenge)
    key = keys.get(hash_key(token))
    if key is None:
        metrics.rejections.labels("unauthenticated").inc()
        raise APIError(401, "invalid_api_key", "the API key is not valid", challenge)
    limiter: RateLimiter = request.app.state.rate_limiter
    wait = limiter.acquire(key.digest, key.requests_per_minute)
    if wait > 0:
        metrics.rejections.labels("rate_limited").inc()
        raise APIError(429, "rate_limited", "too many requests for this API key", {"Retry-After": retry_after_header(wait)})
    request.state.tenant = key.tenant
    return key.tenant

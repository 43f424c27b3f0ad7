"""The gateway application: ``uvicorn gateway.app:create_app --factory``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from gateway.auth import RateLimiter, load_keys
from gateway.errors import install_error_handlers
from gateway.inference import TritonGateway
from gateway.jobs import JobStore
from gateway.logs import configure_logging
from gateway.metrics import GatewayMetrics
from gateway.middleware import BodyLimitMiddleware, RequestContextMiddleware, TrustedHostMiddleware
from gateway.routes import health, jobs, results, styles, stylize, web
from gateway.settings import GatewaySettings, JobSettings, get_job_settings, get_settings
from gateway.storage import Storage
from gateway.worker import Worker

logger = logging.getLogger("pastiche.gateway")

EXPOSED_HEADERS = [
    "X-Request-Id", "X-Pastiche-Result-Id", "X-Pastiche-Model-Version", "X-Pastiche-Cache",
    "X-Pastiche-Input-Key", "X-Pastiche-Output-Key", "Retry-After",
]


def create_app(settings: GatewaySettings | None = None, job_settings: JobSettings | None = None) -> FastAPI:
    """Build the app; clients to Triton and S3 live for the app's lifespan."""
    settings = settings or get_settings()
    job_settings = job_settings or get_job_settings()
    configure_logging(settings.log_level)
    metrics = GatewayMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.storage = Storage.from_settings(settings)
        app.state.triton = TritonGateway(settings.triton_grpc_url, settings.triton_timeout_s, settings.catalogue_ttl_s)
        app.state.cpu = ThreadPoolExecutor(max_workers=settings.cpu_workers, thread_name_prefix="cpu")
        app.state.inflight = asyncio.Semaphore(settings.max_inflight)
        if not app.state.api_keys:
            logger.warning("no API keys configured: every request is served as tenant %r", settings.default_tenant)
        app.state.job_store = JobStore(app.state.storage)
        app.state.worker = None
        if job_settings.worker_enabled:
            app.state.worker = Worker(app.state.job_store, app.state.storage, app.state.triton, settings, job_settings)
            app.state.worker.start()
        try:
            yield
        finally:
            if app.state.worker is not None:
                await app.state.worker.stop()
            await app.state.triton.close()
            app.state.storage.close()
            app.state.cpu.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="Pastiche gateway",
        summary="GAN style transfer on Triton; every input and output kept in S3.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.job_settings = job_settings
    # Parsed at build time so a malformed key entry stops the process before it serves anything.
    app.state.api_keys = load_keys(settings.api_keys, settings.api_keys_file)
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(styles.router)
    app.include_router(stylize.router)
    app.include_router(results.router)
    app.include_router(jobs.router)
    app.include_router(web.router)
    app.mount("/static", web.static_files(), name="static")
    # Added innermost first. The body limit wraps everything that could read the body; the
    # request context wraps it in turn so even a 413 carries a request id and is logged.
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Accept", "X-Request-Id"], expose_headers=EXPOSED_HEADERS,
        )
    if settings.trusted_hosts != ("*",):
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=tuple(settings.trusted_hosts))
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_upload_bytes)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app

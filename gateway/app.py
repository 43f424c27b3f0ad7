"""The gateway application: ``uvicorn gateway.app:create_app --factory``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gateway.errors import install_error_handlers
from gateway.inference import TritonGateway
from gateway.jobs import JobStore
from gateway.routes import health, jobs, styles, stylize, web
from gateway.settings import GatewaySettings, JobSettings, get_job_settings, get_settings
from gateway.storage import Storage
from gateway.worker import Worker


def create_app(settings: GatewaySettings | None = None, job_settings: JobSettings | None = None) -> FastAPI:
    """Build the app; clients to Triton and S3 live for the app's lifespan."""
    settings = settings or get_settings()
    job_settings = job_settings or get_job_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.storage = Storage.connect(
            settings.s3_endpoint_url or None,
            settings.s3_bucket,
            settings.s3_region,
            settings.s3_access_key_id,
            settings.s3_secret_access_key,
        )
        app.state.triton = TritonGateway(settings.triton_grpc_url, settings.triton_timeout_s)
        app.state.job_settings = job_settings
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

    app = FastAPI(
        title="Pastiche gateway",
        summary="GAN style transfer on Triton; every input and output kept in S3.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(styles.router)
    app.include_router(stylize.router)
    app.include_router(jobs.router)
    app.include_router(web.router)
    app.mount("/static", web.static_files(), name="static")
    return app

"""Gateway settings, read from ``PASTICHE_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    """Every knob of the gateway; the README lists them with their environment variable names."""

    model_config = SettingsConfigDict(env_prefix="PASTICHE_", extra="ignore")

    triton_grpc_url: str = Field("127.0.0.1:8001", description="Triton gRPC endpoint (host:port).")
    triton_timeout_s: float = Field(60.0, gt=0, description="Deadline for one inference call.")
    s3_endpoint_url: str | None = Field("http://127.0.0.1:9000", description="S3 endpoint; empty for AWS.")
    s3_bucket: str = Field("pastiche", description="Bucket holding inputs and outputs.")
    s3_region: str = Field("us-east-1", description="S3 region name.")
    s3_access_key_id: str | None = Field(None, description="S3 access key; default AWS credential chain if unset.")
    s3_secret_access_key: str | None = Field(None, description="S3 secret key.")
    default_tenant: str = Field("public", description="Tenant for requests without an API key.")
    max_upload_bytes: int = Field(20 * 1024 * 1024, gt=0, description="Largest accepted request body.")
    max_pixels: int = Field(40_000_000, gt=0, description="Largest accepted image (width x height).")


@lru_cache
def get_settings() -> GatewaySettings:
    """Settings from the environment, read once per process."""
    return GatewaySettings()


class JobSettings(BaseSettings):
    """Async jobs, webhooks and tiling (``PASTICHE_JOBS_*`` variables); see gateway/JOBS.md."""

    model_config = SettingsConfigDict(env_prefix="PASTICHE_JOBS_", extra="ignore")

    worker_enabled: bool = Field(True, description="Run a job worker inside this gateway process.")
    worker_concurrency: int = Field(1, ge=1, le=16, description="Jobs one gateway process works on at once.")
    poll_interval_s: float = Field(1.0, gt=0, description="How often an idle worker lists the queue.")
    lease_s: float = Field(30.0, gt=0, description="A claim expires this long after its last heartbeat.")
    max_attempts: int = Field(3, ge=1, description="Claims of one job before it is failed as unprocessable.")
    max_items: int = Field(500, ge=1, description="Most S3 keys in one batch job.")
    result_url_ttl_s: int = Field(3600, gt=0, description="Lifetime of presigned result URLs.")
    webhook_max_attempts: int = Field(6, ge=1, description="Deliveries tried before a webhook is given up.")
    webhook_backoff_s: float = Field(1.0, gt=0, description="First retry delay; doubles per attempt.")
    webhook_timeout_s: float = Field(10.0, gt=0, description="Deadline of one webhook delivery.")
    tile_overlap: int = Field(64, ge=0, description="Pixels neighbouring tiles share, blended with a cosine ramp.")
    styles_dir: str = Field("export/styles", description="Directory with <style>/preview.png for the web page.")


@lru_cache
def get_job_settings() -> JobSettings:
    """Job settings from the environment, read once per process."""
    return JobSettings()

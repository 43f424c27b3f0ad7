"""Gateway settings, read from ``PASTICHE_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CommaList = Annotated[tuple[str, ...], NoDecode]
IntCommaList = Annotated[tuple[int, ...], NoDecode]


class ServerSideEncryption(StrEnum):
    """S3 server-side encryption applied to every object the gateway writes."""

    NONE = "none"
    S3 = "AES256"
    """SSE-S3: keys managed by the storage service."""
    KMS = "aws:kms"
    """SSE-KMS: needs ``s3_sse_kms_key_id`` (or the account's default KMS key)."""


class GatewaySettings(BaseSettings):
    """Every knob of the gateway; ``gateway/README.md`` lists them with their environment variables."""

    model_config = SettingsConfigDict(env_prefix="PASTICHE_", extra="ignore")

    # Triton
    triton_grpc_url: str = Field("127.0.0.1:8001", description="Triton gRPC endpoint (host:port).")
    triton_metrics_url: str | None = Field(
        "http://127.0.0.1:8002/metrics",
        description="Triton's Prometheus endpoint, read to report the achieved batch size; empty to skip.",
    )
    triton_timeout_s: float = Field(60.0, gt=0, description="Deadline for one inference call.")
    catalogue_ttl_s: float = Field(5.0, ge=0, description="How long the style catalogue read from Triton is reused.")
    # S3
    s3_endpoint_url: str | None = Field("http://127.0.0.1:9000", description="S3 endpoint; empty for AWS.")
    s3_public_endpoint_url: str | None = Field(
        None, description="Endpoint used in presigned URLs when clients reach S3 by another address."
    )
    s3_bucket: str = Field("pastiche", description="Bucket holding inputs and outputs.")
    s3_region: str = Field("us-east-1", description="S3 region name.")
    s3_access_key_id: str | None = Field(None, description="S3 access key; default AWS credential chain if unset.")
    s3_secret_access_key: str | None = Field(None, description="S3 secret key.")
    s3_sse: ServerSideEncryption = Field(ServerSideEncryption.NONE, description="none, AES256 (SSE-S3) or aws:kms (SSE-KMS).")
    s3_sse_kms_key_id: str | None = Field(None, description="KMS key id or ARN for SSE-KMS.")
    s3_retention_days: int | None = Field(
        None, gt=0, description="Objects under tenants/ expire after this many days (lifecycle rule set by `pastiche storage setup`)."
    )
    s3_max_connections: int = Field(32, gt=0, description="S3 connection pool size (and I/O threads).")
    presign_ttl_s: int = Field(300, gt=0, description="Lifetime of presigned URLs handed to clients.")
    presign_max_ttl_s: int = Field(3600, gt=0, le=7 * 24 * 3600, description="Upper bound for presign_ttl_s.")
    # Auth and limits
    api_keys: CommaList = Field(
        (), description="Comma-separated `tenant:sha256hex[:requests_per_minute]` entries; empty = no auth."
    )
    api_keys_file: str | None = Field(None, description="File with one `tenant:sha256hex[:rpm]` entry per line.")
    default_tenant: str = Field("public", description="Tenant of every request when no API keys are configured.")
    rate_limit_per_minute: int = Field(600, gt=0, description="Default per-key request rate.")
    rate_limit_burst: int = Field(60, gt=0, description="Requests a key may send at once before being limited.")
    max_upload_bytes: int = Field(20 * 1024 * 1024, gt=0, description="Largest accepted request body.")
    max_pixels: int = Field(40_000_000, gt=0, description="Largest accepted image (width x height), checked before decoding.")
    max_inflight: int = Field(32, gt=0, description="Stylize requests processed at once; more wait up to queue_wait_s.")
    queue_wait_s: float = Field(2.0, ge=0, description="How long a request waits for an in-flight slot before 503.")
    shape_buckets: IntCommaList = Field(
        (256, 512, 768, 1024), description="Padded side lengths; images are padded up to the next one so requests batch."
    )
    cpu_workers: int = Field(2, gt=0, description="Threads for decode/resize/encode.")
    # HTTP
    cors_origins: CommaList = Field((), description="Origins allowed by CORS (comma-separated); empty disables CORS.")
    trusted_hosts: CommaList = Field(("*",), description="Accepted Host headers (comma-separated, `*.example.com` allowed).")
    log_level: str = Field("INFO", description="Log level of the JSON logs.")

    @field_validator("api_keys", "cors_origins", "trusted_hosts", mode="before")
    @classmethod
    def _split_strings(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("shape_buckets", mode="before")
    @classmethod
    def _split_ints(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(int(part) for part in value.split(",") if part.strip())
        return value

    @field_validator("shape_buckets")
    @classmethod
    def _sorted_positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(side <= 0 for side in value):
            raise ValueError("shape buckets must be positive")
        return tuple(sorted(set(value)))

    @model_validator(mode="after")
    def _bounded_presign(self) -> GatewaySettings:
        if self.presign_ttl_s > self.presign_max_ttl_s:
            raise ValueError(f"presign_ttl_s ({self.presign_ttl_s}) exceeds presign_max_ttl_s ({self.presign_max_ttl_s})")
        return self


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
    webhook_allow_private: bool = Field(
        False, description="Allow webhook hosts on loopback/private/link-local addresses (development stacks only)."
    )
    tile_overlap: int = Field(64, ge=0, description="Pixels neighbouring tiles share, blended with a cosine ramp.")
    styles_dir: str = Field("export/styles", description="Directory with <style>/preview.png for the web page.")


@lru_cache
def get_job_settings() -> JobSettings:
    """Job settings from the environment, read once per process."""
    return JobSettings()

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

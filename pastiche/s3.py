"""The one way Pastiche builds S3 clients (gateway storage, S3 model repositories, local stack)."""

from __future__ import annotations

import boto3
import botocore.config


def s3_client(endpoint_url: str | None, region: str = "us-east-1", max_pool_connections: int = 10,
              **credentials: str | None):  # noqa: ANN201
    """A boto3 S3 client that works against S3-compatible servers.

    botocore >= 1.36 adds CRC checksums to every request by default; several S3-compatible
    servers reject them, so checksums are only sent when an operation requires one.
    """
    config = botocore.config.Config(
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": 2, "mode": "standard"},
        connect_timeout=3,
        read_timeout=30,
        s3={"addressing_style": "path"},
        max_pool_connections=max_pool_connections,
        # SigV4 presigned URLs: required for SSE-KMS objects, and their lifetime is capped at 7 days.
        signature_version="s3v4",
    )
    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config, **credentials)

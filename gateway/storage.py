"""S3 storage for inputs and outputs (boto3 on a dedicated I/O thread pool, off the event loop)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from gateway.settings import GatewaySettings, ServerSideEncryption
from pastiche.s3 import s3_client


class StorageUnavailable(RuntimeError):
    """S3 could not be reached or refused the operation; the request must not succeed."""


@dataclass(frozen=True)
class StoredObject:
    """An object read back from the bucket."""

    body: bytes
    content_type: str
    metadata: dict[str, str]


@dataclass(frozen=True)
class ObjectHead:
    """An object's size, type and user metadata, without its body."""

    size: int
    content_type: str
    metadata: dict[str, str]


@dataclass(frozen=True)
class Encryption:
    """Server-side encryption arguments added to every ``put_object``."""

    mode: ServerSideEncryption = ServerSideEncryption.NONE
    kms_key_id: str | None = None

    def put_arguments(self) -> dict[str, str]:
        """boto3 ``put_object`` keyword arguments for this mode."""
        if self.mode is ServerSideEncryption.NONE:
            return {}
        arguments = {"ServerSideEncryption": self.mode.value}
        if self.mode is ServerSideEncryption.KMS and self.kms_key_id:
            arguments["SSEKMSKeyId"] = self.kms_key_id
        return arguments


class Storage:
    """Puts and gets objects in one bucket. Every call raises :class:`StorageUnavailable` on failure."""

    def __init__(self, client: Any, bucket: str, encryption: Encryption = Encryption(),
                 presign_client: Any | None = None, io_threads: int = 16) -> None:
        self.client = client
        self.presign_client = presign_client or client
        self.bucket = bucket
        self.encryption = encryption
        self.executor = ThreadPoolExecutor(max_workers=io_threads, thread_name_prefix="s3")

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> Storage:
        """A storage configured from the gateway settings."""
        credentials = {
            "aws_access_key_id": settings.s3_access_key_id,
            "aws_secret_access_key": settings.s3_secret_access_key,
        }
        client = s3_client(settings.s3_endpoint_url or None, settings.s3_region,
                           max_pool_connections=settings.s3_max_connections, **credentials)
        presign = None
        if settings.s3_public_endpoint_url:
            presign = s3_client(settings.s3_public_endpoint_url, settings.s3_region, **credentials)
        encryption = Encryption(settings.s3_sse, settings.s3_sse_kms_key_id)
        return cls(client, settings.s3_bucket, encryption, presign, settings.s3_max_connections)

    def close(self) -> None:
        """Release the I/O threads."""
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def _run(self, function: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, function)

    async def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return await self._run(partial(getattr(self.client, operation), Bucket=self.bucket, **kwargs))
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in {"404", "NoSuchKey", "NotFound"}:
                raise KeyError(kwargs.get("Key", "")) from error
            raise StorageUnavailable(f"S3 {operation} failed: {code or error}") from error
        except BotoCoreError as error:
            raise StorageUnavailable(f"S3 {operation} failed: {error}") from error

    async def put(self, key: str, body: bytes, content_type: str, metadata: dict[str, str]) -> None:
        """Store ``body`` under ``key`` (encrypted when configured)."""
        await self._call("put_object", Key=key, Body=body, ContentType=content_type, Metadata=metadata,
                         **self.encryption.put_arguments())

    async def get(self, key: str) -> StoredObject:
        """Read ``key``; raises ``KeyError`` when it does not exist."""
        response = await self._call("get_object", Key=key)
        try:
            body = await self._run(response["Body"].read)
        except BotoCoreError as error:
            raise StorageUnavailable(f"S3 read of {key} failed: {error}") from error
        return StoredObject(body, response.get("ContentType", "application/octet-stream"), response.get("Metadata", {}))

    async def head(self, key: str) -> ObjectHead | None:
        """Size, type and metadata of ``key``, or ``None`` when it does not exist."""
        try:
            response = await self._call("head_object", Key=key)
        except KeyError:
            return None
        return ObjectHead(int(response.get("ContentLength", 0)), response.get("ContentType", ""), response.get("Metadata", {}))

    async def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""
        return await self.head(key) is not None

    def presign(self, key: str, ttl_s: int) -> str:
        """A presigned GET URL for ``key`` valid ``ttl_s`` seconds (local signing, no request)."""
        return self.presign_client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=ttl_s
        )

    async def check(self) -> None:
        """Raise :class:`StorageUnavailable` unless the bucket is reachable."""
        try:
            await self._call("head_bucket")
        except KeyError as error:
            raise StorageUnavailable(f"bucket {self.bucket!r} does not exist") from error

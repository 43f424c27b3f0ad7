"""S3 storage for inputs and outputs (boto3, run off the event loop)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pastiche.s3 import s3_client


class StorageUnavailable(RuntimeError):
    """S3 could not be reached or refused the operation; the request must not succeed."""


@dataclass(frozen=True)
class StoredObject:
    """An object read back from the bucket."""

    body: bytes
    content_type: str
    metadata: dict[str, str]


class Storage:
    """Puts and gets objects in one bucket. Every call raises :class:`StorageUnavailable` on failure."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    @classmethod
    def connect(cls, endpoint_url: str | None, bucket: str, region: str,
                access_key_id: str | None, secret_access_key: str | None) -> Storage:
        """A storage bound to ``bucket`` at ``endpoint_url``."""
        client = s3_client(endpoint_url, region, aws_access_key_id=access_key_id,
                           aws_secret_access_key=secret_access_key)
        return cls(client, bucket)

    async def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(getattr(self.client, operation), Bucket=self.bucket, **kwargs)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in {"404", "NoSuchKey", "NotFound"}:
                raise KeyError(kwargs.get("Key", "")) from error
            raise StorageUnavailable(f"S3 {operation} failed: {code or error}") from error
        except BotoCoreError as error:
            raise StorageUnavailable(f"S3 {operation} failed: {error}") from error

    async def put(self, key: str, body: bytes, content_type: str, metadata: dict[str, str]) -> None:
        """Store ``body`` under ``key``."""
        await self._call("put_object", Key=key, Body=body, ContentType=content_type, Metadata=metadata)

    async def get(self, key: str) -> StoredObject:
        """Read ``key``; raises ``KeyError`` when it does not exist."""
        response = await self._call("get_object", Key=key)
        body = await asyncio.to_thread(response["Body"].read)
        return StoredObject(body, response.get("ContentType", "application/octet-stream"), response.get("Metadata", {}))

    async def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""
        try:
            await self._call("head_object", Key=key)
        except KeyError:
            return False
        return True

    async def check(self) -> None:
        """Raise :class:`StorageUnavailable` unless the bucket is reachable."""
        await self._call("head_bucket")

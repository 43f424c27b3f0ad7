"""Where a Triton model repository lives: a local directory or ``s3://bucket/prefix``.

Both stores expose the same few operations publishing needs (read, write, list versions,
delete a version, and an exclusive per-style lock), so the publish flow is written once.
Keys are relative to the repository root, with ``/`` separators: ``<style>/<version>/model.onnx``.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import botocore.exceptions

from pastiche.s3 import s3_client


class StoreError(RuntimeError):
    """The repository cannot be reached or used (missing bucket, permissions, lock timeout)."""


class ModelStore(Protocol):
    """Operations on a model repository, local or S3."""

    def triton_location(self) -> str:
        """What Triton's ``--model-repository`` takes for this repository."""

    def read(self, key: str) -> bytes | None:
        """Content of ``key``, or ``None`` when absent."""

    def write(self, key: str, data: bytes) -> None:
        """Create or replace ``key``."""

    def styles(self) -> list[str]:
        """Model folders at the repository root, sorted."""

    def versions(self, style: str) -> list[int]:
        """Numeric version folders of ``style``, ascending."""

    def delete_tree(self, prefix: str) -> None:
        """Remove ``prefix`` and everything under it."""

    def lock(self, style: str, timeout: float = 600.0) -> AbstractContextManager[None]:
        """Exclusive lock serializing changes to ``style`` across processes and machines."""


@dataclass
class LocalStore:
    """A repository directory on this machine; ``flock`` serializes publishers of one style."""

    root: Path

    def triton_location(self) -> str:
        return str(self.root.resolve())

    def read(self, key: str) -> bytes | None:
        path = self.root / key
        return path.read_bytes() if path.is_file() else None

    def write(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write aside then rename, so Triton never reads a half-written config or model.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)

    def styles(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def versions(self, style: str) -> list[int]:
        folder = self.root / style
        if not folder.is_dir():
            return []
        return sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())

    def delete_tree(self, prefix: str) -> None:
        path = self.root / prefix
        if path.is_dir():
            for child in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                child.rmdir() if child.is_dir() else child.unlink()
            path.rmdir()
        elif path.exists():
            path.unlink()

    @contextmanager
    def lock(self, style: str, timeout: float = 600.0) -> Iterator[None]:
        """``flock`` on ``<style>/.publish.lock``; the kernel releases it if the publisher dies."""
        path = self.root / style / ".publish.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StoreError(f"another publish of '{style}' holds {path} for over {timeout:.0f}s") from None
                    time.sleep(0.1)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


LOCK_TTL_S = 900.0
"""A lock object older than this is taken to belong to a publisher that died, and is broken."""


@dataclass
class S3Store:
    """A repository under ``s3://bucket/prefix`` on AWS or any S3-compatible endpoint.

    The per-style lock is an object created with ``If-None-Match: *`` (a conditional put that
    fails when the object exists), so two publishers can never both hold it.
    """

    bucket: str
    prefix: str
    endpoint_url: str | None = None
    client: object = None

    def __post_init__(self) -> None:
        self.prefix = self.prefix.strip("/")
        if self.client is None:
            self.client = s3_client(self.endpoint_url)

    @classmethod
    def from_url(cls, url: str, endpoint_url: str | None = None, client: object = None) -> S3Store:
        """Parse ``s3://bucket/prefix``."""
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise StoreError(f"S3 repository must look like s3://bucket/prefix, got {url!r}")
        return cls(bucket, prefix, endpoint_url, client)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def check(self) -> None:
        """Fail clearly when the bucket is missing or unreachable."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except botocore.exceptions.ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise StoreError(f"S3 bucket '{self.bucket}' does not exist at {self._where()}") from None
            raise StoreError(f"S3 bucket '{self.bucket}' at {self._where()} is not usable: {error}") from None
        except botocore.exceptions.BotoCoreError as error:
            raise StoreError(f"S3 endpoint {self._where()} is unreachable: {error}") from None

    def initialize(self) -> None:
        """Create the repository's marker object: Triton refuses to start on a prefix with no objects."""
        if self.read(".pastiche-repository") is None:
            self.write(".pastiche-repository", b"Triton model repository managed by `pastiche publish`\n")

    def _where(self) -> str:
        return self.endpoint_url or "AWS S3"

    def triton_location(self) -> str:
        # Triton's S3 filesystem takes a custom endpoint inline: s3://http://host:port/bucket/prefix.
        endpoint = f"{self.endpoint_url.rstrip('/')}/" if self.endpoint_url else ""
        return f"s3://{endpoint}{self.bucket}/{self.prefix}".rstrip("/")

    def read(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except botocore.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise

    def write(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def _list(self, prefix: str, delimiter: str | None = "/") -> Iterator[dict]:
        paginator = self.client.get_paginator("list_objects_v2")
        kwargs = {"Bucket": self.bucket, "Prefix": prefix}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        yield from paginator.paginate(**kwargs)

    def _folders(self, key: str) -> list[str]:
        base = self._key(key).rstrip("/") + "/" if key or self.prefix else ""
        names = []
        for page in self._list(base):
            names += [entry["Prefix"][len(base):].rstrip("/") for entry in page.get("CommonPrefixes", [])]
        return names

    def styles(self) -> list[str]:
        return sorted(name for name in self._folders("") if not name.startswith("."))

    def versions(self, style: str) -> list[int]:
        return sorted(int(name) for name in self._folders(style) if name.isdigit())

    def delete_tree(self, prefix: str) -> None:
        base = self._key(prefix).rstrip("/")
        for page in self._list(base + "/", delimiter=None):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
        self.client.delete_object(Bucket=self.bucket, Key=base)

    def _try_create(self, key: str, body: bytes) -> bool:
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*")
        except botocore.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise
        return True

    def _break_if_stale(self, key: str) -> None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except botocore.exceptions.ClientError:
            return
        age = time.time() - head["LastModified"].timestamp()
        if age > LOCK_TTL_S:
            # Delete only the stale object we looked at (If-Match), never a lock taken since.
            try:
                self.client.delete_object(Bucket=self.bucket, Key=key, IfMatch=head["ETag"])
            except botocore.exceptions.ClientError:
                return

    @contextmanager
    def lock(self, style: str, timeout: float = 600.0) -> Iterator[None]:
        """Hold ``<style>/publish.lock`` (conditional put); released by deleting it."""
        key = self._key(f"{style}/publish.lock")
        owner = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}).encode()
        deadline = time.monotonic() + timeout
        while not self._try_create(key, owner):
            self._break_if_stale(key)
            if time.monotonic() > deadline:
                raise StoreError(f"another publish of '{style}' holds s3://{self.bucket}/{key} for over {timeout:.0f}s")
            time.sleep(0.2)
        try:
            yield
        finally:
            self.client.delete_object(Bucket=self.bucket, Key=key)


def open_store(repository: str, s3_endpoint_url: str | None = None) -> LocalStore | S3Store:
    """A store for ``PATH`` or ``s3://bucket/prefix``; S3 stores are checked to exist."""
    if repository.startswith("s3://"):
        store = S3Store.from_url(repository, s3_endpoint_url)
        store.check()
        return store
    return LocalStore(Path(repository))

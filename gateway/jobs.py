"""Durable async jobs kept in S3 itself: records, the queue, claims with leases, idempotency.

Why S3 and not a broker: the gateway already depends on S3 and nothing else, and S3 conditional
writes give the two primitives a queue needs —

- create-once (``PutObject`` with ``If-None-Match: *``) for job records, queue markers and the
  ``Idempotency-Key`` → job id mapping, and
- compare-and-swap (``PutObject`` with ``If-Match: <ETag>``) for claims and state transitions.

A worker claims a job by swapping a lease (owner, expiry) into its record; it renews the lease
with every write (a heartbeat), so a job whose worker died becomes claimable again once the
lease expires. Outputs are content-addressed (:func:`gateway.keys.output_key`), so a job that
is executed twice after such a takeover writes the same object twice — harmless.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from enum import Enum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from gateway.keys import (
    JOB_QUEUE_PREFIX,
    idempotency_record_key,
    job_key,
    job_queue_key,
    parse_job_queue_key,
    result_id,
    sha256_hex,
)
from gateway.storage import Storage, StorageUnavailable


class JobStatus(str, Enum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


TERMINAL = {JobStatus.succeeded, JobStatus.failed}


class ErrorInfo(BaseModel):
    """The same ``code``/``message`` pair the synchronous API answers with."""

    code: str
    message: str


class JobItem(BaseModel):
    """One input of a job and what became of it."""

    index: int
    input_key: str
    status: JobStatus = JobStatus.queued
    output_key: str | None = None
    model_version: str | None = None
    width: int | None = None
    height: int | None = None
    processed_by: str | None = None
    error: ErrorInfo | None = None


class JobRequest(BaseModel):
    """What the client asked for; fixed at submission."""

    style: str
    version: str = ""
    max_side: int | None = None
    tile: bool = False
    tile_side: int | None = None
    webhook_url: str | None = None


class Lease(BaseModel):
    """Who works on the job, until when (epoch seconds); renewed by every write of the holder."""

    owner: str
    token: str
    expires_at: float


class WebhookState(BaseModel):
    url: str
    attempts: int = 0
    delivered_at: float | None = None
    given_up: bool = False
    last_error: str | None = None

    @property
    def pending(self) -> bool:
        return self.delivered_at is None and not self.given_up


class JobRecord(BaseModel):
    """The job document stored at :func:`gateway.keys.job_key`."""

    id: str
    tenant: str
    status: JobStatus = JobStatus.queued
    created_at: float
    updated_at: float
    finished_at: float | None = None
    request: JobRequest
    items: list[JobItem]
    attempts: int = 0
    pauses: int = 0
    not_before: float = 0.0
    lease: Lease | None = None
    error: ErrorInfo | None = None
    webhook: WebhookState | None = None
    fingerprint: str = ""

    def finish(self, now: float) -> None:
        """Terminal status from the items: failed only when every item failed."""
        failed = [item for item in self.items if item.status == JobStatus.failed]
        self.status = JobStatus.failed if len(failed) == len(self.items) else JobStatus.succeeded
        if self.status == JobStatus.failed and self.error is None:
            first = failed[0].error or ErrorInfo(code="failed", message="processing failed")
            self.error = ErrorInfo(code=first.code, message=f"every item failed; first: {first.message}")
        self.finished_at = now


class JobNotFound(LookupError):
    """No job with that id for that tenant (never reveals other tenants' jobs)."""


class PreconditionFailed(RuntimeError):
    """A conditional write lost: the object exists (create-once) or changed (compare-and-swap)."""


class IdempotencyConflict(ValueError):
    """The ``Idempotency-Key`` was used before for a different request."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id


def new_job_id() -> str:
    """Random, unguessable job id."""
    return uuid.uuid4().hex


class JobStore:
    """Job records, queue markers and idempotency mappings in the gateway's bucket."""

    def __init__(self, storage: Storage) -> None:
        self.client = storage.client
        self.bucket = storage.bucket
        self.put_arguments = storage.encryption.put_arguments()

    async def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(getattr(self.client, operation), Bucket=self.bucket, **kwargs)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in {"404", "NoSuchKey", "NotFound"}:
                raise KeyError(kwargs.get("Key", "")) from error
            # 409 ConditionalRequestConflict: a concurrent conditional write on the same key won.
            if code in {"PreconditionFailed", "ConditionalRequestConflict"} or status in {409, 412}:
                raise PreconditionFailed(kwargs.get("Key", "")) from error
            raise StorageUnavailable(f"S3 {operation} failed: {code or error}") from error
        except BotoCoreError as error:
            raise StorageUnavailable(f"S3 {operation} failed: {error}") from error

    async def put_json(self, key: str, document: dict[str, Any], **condition: str) -> str:
        body = json.dumps(document, separators=(",", ":")).encode()
        response = await self._call("put_object", Key=key, Body=body, ContentType="application/json",
                                    **self.put_arguments, **condition)
        return response["ETag"]

    async def get_json(self, key: str) -> tuple[dict[str, Any], str]:
        response = await self._call("get_object", Key=key)
        body = await asyncio.to_thread(response["Body"].read)
        return json.loads(body), response["ETag"]

    async def get(self, tenant: str, job_id: str) -> tuple[JobRecord, str]:
        """The record and its ETag; :class:`JobNotFound` when this tenant has no such job."""
        try:
            document, etag = await self.get_json(job_key(tenant, job_id))
        except (KeyError, ValueError) as error:
            raise JobNotFound(job_id) from error
        return JobRecord.model_validate(document), etag

    async def replace(self, record: JobRecord, etag: str) -> str:
        """Compare-and-swap: write ``record`` only if the stored one still has ``etag``."""
        return await self.put_json(job_key(record.tenant, record.id), record.model_dump(mode="json"), IfMatch=etag)

    async def submit(self, record: JobRecord, idempotency_key: str | None) -> tuple[JobRecord, bool]:
        """Store a new job and queue it; returns ``(job, created)``.

        With an idempotency key, the key → job id mapping is created first (create-once), so of
        any number of concurrent submissions exactly one job id wins; the others get that job.
        A crash between the mapping and the record is repaired by the next retry, which finds
        the mapping, no record, and creates the record under the mapped id.
        """
        if idempotency_key is not None:
            mapping_key = idempotency_record_key(record.tenant, idempotency_key)
            mapping = {"job_id": record.id, "fingerprint": record.fingerprint}
            try:
                await self.put_json(mapping_key, mapping, IfNoneMatch="*")
            except PreconditionFailed:
                existing, _ = await self.get_json(mapping_key)
                if existing["fingerprint"] != record.fingerprint:
                    raise IdempotencyConflict(existing["job_id"]) from None
                try:
                    found, _ = await self.get(record.tenant, existing["job_id"])
                    await self._ensure_queued(found)
                    return found, False
                except JobNotFound:
                    record = record.model_copy(update={"id": existing["job_id"]})
        try:
            await self.put_json(job_key(record.tenant, record.id), record.model_dump(mode="json"), IfNoneMatch="*")
        except PreconditionFailed:
            found, _ = await self.get(record.tenant, record.id)
            return found, False
        await self._ensure_queued(record)
        return record, True

    async def _ensure_queued(self, record: JobRecord) -> None:
        if record.status in TERMINAL and (record.webhook is None or not record.webhook.pending):
            return
        try:
            await self.put_json(job_queue_key(record.tenant, record.id), {"created_at": record.created_at}, IfNoneMatch="*")
        except PreconditionFailed:
            pass

    async def queued(self, limit: int = 1000) -> list[tuple[str, str]]:
        """``(tenant, job_id)`` of queue markers, oldest listing order first."""
        found: list[tuple[str, str]] = []
        token: str | None = None
        while len(found) < limit:
            kwargs: dict[str, Any] = {"Prefix": JOB_QUEUE_PREFIX, "MaxKeys": min(1000, limit - len(found))}
            if token:
                kwargs["ContinuationToken"] = token
            page = await self._call("list_objects_v2", **kwargs)
            for entry in page.get("Contents", []):
                try:
                    found.append(parse_job_queue_key(entry["Key"]))
                except ValueError:
                    continue
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                break
        return found

    async def dequeue(self, tenant: str, job_id: str) -> None:
        """Remove the queue marker of a job that needs no more work."""
        await self._call("delete_object", Key=job_queue_key(tenant, job_id))

    async def try_claim(self, tenant: str, job_id: str, owner: str, lease_s: float) -> Claim | None:
        """Take the job if it is unclaimed or its lease expired; ``None`` if someone else holds it."""
        try:
            record, etag = await self.get(tenant, job_id)
        except JobNotFound:
            # A marker without a record: the submission crashed before creating it, or was removed.
            await self.dequeue(tenant, job_id)
            return None
        now = time.time()
        if (record.lease is not None and record.lease.expires_at > now) or record.not_before > now:
            return None
        if record.status in TERMINAL and (record.webhook is None or not record.webhook.pending):
            await self.dequeue(tenant, job_id)
            return None
        record.lease = Lease(owner=owner, token=uuid.uuid4().hex, expires_at=now + lease_s)
        record.attempts += 1
        record.updated_at = now
        try:
            etag = await self.replace(record, etag)
        except (PreconditionFailed, KeyError):
            return None
        return Claim(self, record, etag, lease_s)


class LeaseLost(RuntimeError):
    """Another worker took the job over (our lease had expired); stop working on it."""


class Claim:
    """A held lease on one job. Every :meth:`update` is a compare-and-swap that renews the lease."""

    def __init__(self, store: JobStore, record: JobRecord, etag: str, lease_s: float) -> None:
        self.store = store
        self.record = record
        self.etag = etag
        self.lease_s = lease_s
        self._lock = asyncio.Lock()

    async def update(self, change: Callable[[JobRecord], None] | None = None, release: bool = False) -> None:
        """Apply ``change`` and write; ``release`` drops the lease. :class:`LeaseLost` if taken over."""
        async with self._lock:
            record = self.record.model_copy(deep=True)
            if change is not None:
                change(record)
            now = time.time()
            record.updated_at = now
            if release:
                record.lease = None
            elif record.lease is not None:
                record.lease.expires_at = now + self.lease_s
            try:
                self.etag = await self.store.replace(record, self.etag)
            except (PreconditionFailed, KeyError) as error:
                raise LeaseLost(record.id) from error
            self.record = record

    async def heartbeat_forever(self) -> None:
        """Renew the lease every third of its length until cancelled (or lost)."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            await self.update()


def request_fingerprint(request: JobRequest, input_keys: list[str]) -> str:
    """Stable digest of a submission, to tell a retried request from a reused idempotency key."""
    canonical = json.dumps({"request": request.model_dump(mode="json"), "inputs": input_keys}, sort_keys=True)
    return sha256_hex(canonical.encode())


def new_record(tenant: str, request: JobRequest, input_keys: list[str], now: float | None = None) -> JobRecord:
    """A queued job over ``input_keys``."""
    now = time.time() if now is None else now
    return JobRecord(
        id=new_job_id(),
        tenant=tenant,
        created_at=now,
        updated_at=now,
        request=request,
        items=[JobItem(index=index, input_key=key) for index, key in enumerate(input_keys)],
        webhook=WebhookState(url=request.webhook_url) if request.webhook_url else None,
        fingerprint=request_fingerprint(request, input_keys),
    )




def job_document(record: JobRecord, presign: Callable[[str], str]) -> dict[str, Any]:
    """The public view of a job: what ``GET /v1/jobs/{id}`` and webhooks carry (no lease internals)."""
    counts = {status.value: 0 for status in JobStatus}
    items = []
    for item in record.items:
        counts[item.status.value] += 1
        view = item.model_dump(mode="json")
        view["output_url"] = presign(item.output_key) if item.output_key else None
        view["result_id"] = result_id(item.output_key) if item.output_key else None
        items.append(view)
    webhook = None
    if record.webhook is not None:
        webhook = {
            "url": record.webhook.url,
            "attempts": record.webhook.attempts,
            "delivered": record.webhook.delivered_at is not None,
            "given_up": record.webhook.given_up,
            "last_error": record.webhook.last_error,
        }
    return {
        "id": record.id,
        "status": record.status.value,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "finished_at": record.finished_at,
        "request": record.request.model_dump(mode="json", exclude={"webhook_url"}),
        "attempts": record.attempts,
        "counts": counts,
        "items": items,
        "error": record.error.model_dump(mode="json") if record.error else None,
        "webhook": webhook,
    }

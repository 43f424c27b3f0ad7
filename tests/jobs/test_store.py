"""The S3 job store's conditional-write protocol against a real S3 endpoint (moto server, in-process)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from deploy.local_s3 import LOCAL_CREDENTIALS
from gateway.jobs import IdempotencyConflict, JobRequest, JobStatus, JobStore, LeaseLost, new_record
from gateway.storage import Storage
from pastiche.s3 import s3_client
from tests.conftest import free_port


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def store(endpoint: str, request: pytest.FixtureRequest) -> JobStore:
    bucket = f"store-{abs(hash(request.node.name)) % 10**10}"
    storage = Storage(s3_client(endpoint, **LOCAL_CREDENTIALS), bucket)
    storage.client.create_bucket(Bucket=bucket)
    return JobStore(storage)


def record(tenant: str = "acme", max_side: int = 64):  # noqa: ANN201
    return new_record(tenant, JobRequest(style="s", max_side=max_side), [f"tenants/{tenant}/inputs/a"])


def test_one_of_concurrent_claims_wins_and_an_expired_lease_is_reclaimed(store: JobStore) -> None:
    async def scenario() -> None:
        job, created = await store.submit(record(), None)
        assert created and await store.queued() == [("acme", job.id)]
        claims = await asyncio.gather(*(store.try_claim("acme", job.id, f"w{n}", 0.5) for n in range(4)))
        winners = [claim for claim in claims if claim is not None]
        assert len(winners) == 1
        assert await store.try_claim("acme", job.id, "late", 0.5) is None, "lease still valid"
        await asyncio.sleep(0.6)
        taker = await store.try_claim("acme", job.id, "taker", 5)
        assert taker is not None and taker.record.attempts == 2
        with pytest.raises(LeaseLost):
            await winners[0].update(lambda j: setattr(j, "status", JobStatus.succeeded))
        await taker.update(lambda j: j.finish(time.time()))
        await store.dequeue("acme", job.id)
        await taker.update(release=True)
        stored, _ = await store.get("acme", job.id)
        assert stored.lease is None and await store.queued() == []

    asyncio.run(scenario())


def test_not_before_defers_a_paused_job(store: JobStore) -> None:
    async def scenario() -> None:
        job, _ = await store.submit(record(), None)
        claim = await store.try_claim("acme", job.id, "w", 5)
        assert claim is not None
        await claim.update(lambda j: setattr(j, "not_before", time.time() + 0.4), release=True)
        assert await store.try_claim("acme", job.id, "w", 5) is None
        await asyncio.sleep(0.5)
        assert await store.try_claim("acme", job.id, "w", 5) is not None

    asyncio.run(scenario())


def test_idempotency_mapping_is_created_once_and_guards_against_reuse(store: JobStore) -> None:
    async def scenario() -> None:
        results = await asyncio.gather(*(store.submit(record(), "key-1") for _ in range(3)))
        assert len({job.id for job, _ in results}) == 1
        assert sum(created for _, created in results) >= 1
        with pytest.raises(IdempotencyConflict):
            await store.submit(record(max_side=128), "key-1")
        other, created = await store.submit(record(tenant="globex"), "key-1")
        assert created and other.id != results[0][0].id, "idempotency keys are per tenant"

    asyncio.run(scenario())

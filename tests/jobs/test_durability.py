"""Durability on the real stack: a killed gateway's jobs finish after restart; two gateways share a queue."""

from __future__ import annotations

import signal

import httpx
import numpy as np
import pytest

from tests.conftest import RunningStack
from tests.jobs.conftest import STYLE, finished, object_keys, png_bytes, wait_for

pytestmark = pytest.mark.integration


def put_inputs(s3, bucket: str, photos: list[np.ndarray], tenant: str = "public") -> list[str]:  # noqa: ANN001
    keys = []
    for number, photo in enumerate(photos):
        key = f"tenants/{tenant}/uploads/photo-{number}.png"
        s3.put_object(Bucket=bucket, Key=key, Body=png_bytes(photo), ContentType="image/png")
        keys.append(key)
    return keys


def variants(astronaut: np.ndarray, count: int, side: int) -> list[np.ndarray]:
    """Distinct images (distinct content hashes) cut from one photograph."""
    return [np.ascontiguousarray(np.roll(astronaut, 37 * n, axis=1)[:side, :side]) for n in range(count)]


def test_job_survives_gateway_kill_and_restart(stack: RunningStack, astronaut, bucket, s3, start_gateway) -> None:
    first = start_gateway(bucket)
    keys = put_inputs(s3, bucket, variants(astronaut, 3, 256))
    # Tiles of 64 px make each item a few dozen inferences: slow enough to be killed mid-job.
    batch = {"style": STYLE, "input_keys": keys, "tile": True, "tile_side": 64}
    response = httpx.post(f"{first.url}/v1/jobs/batch", json=batch, timeout=30)
    assert response.status_code == 202, response.text
    victim = response.json()["id"]
    queued = [httpx.post(f"{first.url}/v1/jobs/batch", json={**batch, "input_keys": [key]}, timeout=30).json()["id"]
              for key in keys[:2]]

    def mid_job(job: dict) -> bool:
        assert not finished(job), "the job finished before it could be interrupted; make it heavier"
        return job["status"] == "running" and job["counts"]["succeeded"] >= 1

    wait_for(first.url, victim, mid_job)
    first.process.signal(signal.SIGKILL)
    first.process.process.wait()

    second = start_gateway(bucket)
    jobs = [wait_for(second.url, job_id, finished, timeout=120) for job_id in [victim, *queued]]
    assert [job["status"] for job in jobs] == ["succeeded"] * 3
    assert jobs[0]["attempts"] == 2, "the killed job is re-claimed exactly once after its lease expired"
    assert all(item["status"] == "succeeded" for job in jobs for item in job["items"])
    outputs = object_keys(s3, bucket, "tenants/public/outputs/")
    # Three distinct inputs, one tiled rendering each: exactly one object per input, however often it ran.
    assert len(outputs) == 3, outputs
    assert sorted(outputs) == sorted({item["output_key"] for job in jobs for item in job["items"]})
    assert object_keys(s3, bucket, "queue/") == []
    record = httpx.get(f"{second.url}/v1/jobs/{victim}").json()
    assert record["items"][0]["processed_by"] != record["items"][-1]["processed_by"]


def test_two_gateways_sharing_a_bucket_complete_each_job_once(stack: RunningStack, astronaut, bucket, s3,
                                                               start_gateway) -> None:
    gateways = [start_gateway(bucket), start_gateway(bucket)]
    keys = put_inputs(s3, bucket, variants(astronaut, 8, 256))
    ids = []
    for number, key in enumerate(keys):
        gateway = gateways[number % 2]
        response = httpx.post(f"{gateway.url}/v1/jobs/batch", json={"style": STYLE, "input_keys": [key]}, timeout=30)
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    jobs = [wait_for(gateways[0].url, job_id, finished) for job_id in ids]
    assert all(job["status"] == "succeeded" and job["attempts"] == 1 for job in jobs), jobs
    outputs = object_keys(s3, bucket, "tenants/public/outputs/")
    assert sorted(outputs) == sorted(job["items"][0]["output_key"] for job in jobs)
    workers = {job["items"][0]["processed_by"] for job in jobs}
    assert len(workers) == 2, f"both gateways should have worked: {workers}"
    assert object_keys(s3, bucket, "queue/") == []

"""Jobs API on real gateways: idempotency, tenant isolation, batch per-item status, errors."""

from __future__ import annotations

import hashlib
import io
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.jobs.conftest import STYLE, finished, object_keys, png_bytes, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def gateway(bucket, start_gateway):  # noqa: ANN001, ANN201
    return start_gateway(bucket)


def upload(url: str, pixels: np.ndarray, headers: dict[str, str] | None = None, **fields: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/jobs", files={"image": ("photo.png", png_bytes(pixels), "image/png")},
                      data={"style": STYLE, **fields}, headers=headers or {}, timeout=30)


def test_upload_job_lifecycle_and_result(gateway, astronaut) -> None:  # noqa: ANN001
    response = upload(gateway.url, astronaut[:200, :300], max_side="128")
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued"
    job = wait_for(gateway.url, job["id"], finished)
    assert job["status"] == "succeeded", job
    item = job["items"][0]
    assert (item["width"], item["height"]) == (128, 85)
    output = httpx.get(f"{gateway.url}/v1/jobs/{job['id']}/items/0/output")
    assert output.status_code == 200
    assert Image.open(io.BytesIO(output.content)).size == (128, 85)
    presigned = httpx.get(item["output_url"])
    assert presigned.status_code == 200 and presigned.content == output.content
    assert httpx.get(f"{gateway.url}/v1/results/{item['result_id']}").content == output.content


def test_idempotency_key_returns_the_same_job(gateway, astronaut, bucket, s3) -> None:  # noqa: ANN001
    headers = {"Idempotency-Key": "order-4711"}
    photo = astronaut[:96, :96]
    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda _: upload(gateway.url, photo, headers, max_side="64"), range(4)))
    ids = {response.json()["id"] for response in responses}
    assert len(ids) == 1, [response.text for response in responses]
    assert sorted(response.status_code for response in responses) == [200, 200, 200, 202]
    assert len(object_keys(s3, bucket, "tenants/public/jobs/")) == 1
    again = upload(gateway.url, photo, headers, max_side="64")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] in ids
    different = upload(gateway.url, photo, headers, max_side="80")
    assert different.status_code == 409
    assert different.json()["error"]["code"] == "idempotency_key_reused"


def test_tenants_cannot_see_each_others_jobs(bucket, start_gateway, astronaut) -> None:  # noqa: ANN001
    keys = {"acme": "pk_acme_secret", "globex": "pk_globex_secret"}
    entries = ",".join(f"{tenant}:{hashlib.sha256(key.encode()).hexdigest()}" for tenant, key in keys.items())
    gateway = start_gateway(bucket, PASTICHE_API_KEYS=entries)
    acme = {"Authorization": f"Bearer {keys['acme']}"}
    globex = {"Authorization": f"Bearer {keys['globex']}"}
    assert upload(gateway.url, astronaut[:64, :64], max_side="64").status_code == 401
    job = upload(gateway.url, astronaut[:64, :64], acme, max_side="64").json()
    wait_for(gateway.url, job["id"], finished, headers=acme)
    for path in (f"/v1/jobs/{job['id']}", f"/v1/jobs/{job['id']}/items/0/output"):
        response = httpx.get(f"{gateway.url}{path}", headers=globex)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "job_not_found"
    stolen = httpx.post(f"{gateway.url}/v1/jobs/batch", headers=globex,
                        json={"style": STYLE, "input_keys": [job["items"][0]["input_key"]]})
    assert stolen.status_code == 404
    assert stolen.json()["error"]["code"] == "input_not_found"
    # Same Idempotency-Key, other tenant: a separate job.
    replay = {"Idempotency-Key": "shared-key"}
    first = upload(gateway.url, astronaut[:64, :64], {**acme, **replay}, max_side="64").json()
    second = upload(gateway.url, astronaut[:64, :64], {**globex, **replay}, max_side="64").json()
    assert first["id"] != second["id"]
    assert httpx.get(f"{gateway.url}/v1/jobs/{job['id']}", headers=acme).status_code == 200


def test_batch_reports_per_item_status(gateway, astronaut, bucket, s3) -> None:  # noqa: ANN001
    keys = []
    for number in range(3):
        key = f"tenants/public/uploads/batch-{number}.png"
        s3.put_object(Bucket=bucket, Key=key, Body=png_bytes(np.ascontiguousarray(astronaut[number * 50:][:120, :160])))
        keys.append(key)
    s3.put_object(Bucket=bucket, Key="tenants/public/uploads/notes.png", Body=b"not an image at all")
    keys += ["tenants/public/uploads/notes.png", "tenants/public/uploads/missing.png"]
    response = httpx.post(f"{gateway.url}/v1/jobs/batch", json={"style": STYLE, "input_keys": keys, "max_side": 64})
    assert response.status_code == 202, response.text
    job = wait_for(gateway.url, response.json()["id"], finished)
    assert job["status"] == "succeeded"
    assert job["counts"] == {"queued": 0, "running": 0, "succeeded": 3, "failed": 2}
    statuses = [(item["input_key"], item["status"], (item["error"] or {}).get("code")) for item in job["items"]]
    assert statuses[3:] == [
        ("tenants/public/uploads/notes.png", "failed", "unsupported_media_type"),
        ("tenants/public/uploads/missing.png", "failed", "input_not_found"),
    ]
    assert all(status == "succeeded" for _, status, _ in statuses[:3])


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"style": "no-such-style", "input_keys": ["tenants/public/x.png"]}, 404, "style_not_found"),
        ({"style": STYLE, "input_keys": []}, 422, "invalid_request"),
        ({"style": STYLE, "input_keys": ["tenants/public/x.png"], "webhook_url": "ftp://x"}, 422, "invalid_request"),
        ({"style": STYLE, "input_keys": ["tenants/public/x.png"], "tile_side": 8}, 422, "invalid_request"),
    ],
)
def test_bad_batch_requests_are_4xx_with_reason(gateway, body, status, code) -> None:  # noqa: ANN001
    response = httpx.post(f"{gateway.url}/v1/jobs/batch", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_bad_uploads_are_rejected_before_queueing(gateway, bucket, s3) -> None:  # noqa: ANN001
    response = httpx.post(f"{gateway.url}/v1/jobs", files={"image": ("a.png", b"plain text", "image/png")},
                          data={"style": STYLE})
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    neither = httpx.post(f"{gateway.url}/v1/jobs", data={"style": STYLE})
    assert neither.status_code == 422
    assert httpx.get(f"{gateway.url}/v1/jobs/not-a-job").status_code == 404
    assert httpx.get(f"{gateway.url}/v1/jobs/..%2F..%2Fsecrets").status_code == 404
    assert object_keys(s3, bucket, "tenants/public/jobs/") == []

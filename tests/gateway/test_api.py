"""The gateway against the shared real stack: real Triton (python backend + ONNX Runtime), real S3 endpoint."""

from __future__ import annotations

import asyncio
import io
import re

import httpx
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from deploy.local_s3 import LOCAL_CREDENTIALS
from gateway.metrics import parse_batch_stats
from gateway.settings import ServerSideEncryption
from gateway.storage import Encryption, Storage
from pastiche.cli import app as cli
from pastiche.s3 import s3_client
from tests.conftest import RunningStack
from tests.gateway import images

pytestmark = pytest.mark.integration

STYLE = "watercolor"


@pytest.fixture(scope="module")
def s3(stack: RunningStack):  # noqa: ANN201 - a boto3 client
    return s3_client(stack.s3_endpoint, **LOCAL_CREDENTIALS)


def stored_keys(s3, bucket: str) -> set[str]:  # noqa: ANN001
    keys: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys |= {item["Key"] for item in page.get("Contents", [])}
    return keys


def stylize(stack: RunningStack, data: bytes, tenant: str = "alpha", content_type: str = "image/jpeg",
            json: bool = False, **params: object) -> httpx.Response:
    headers = stack.auth(tenant) | ({"Accept": "application/json"} if json else {})
    return httpx.post(
        f"{stack.gateway}/v1/stylize",
        files={"image": ("upload", data, content_type)},
        data={"style": STYLE, **{k: str(v) for k, v in params.items()}},
        headers=headers,
        timeout=60,
    )


def test_styles_endpoints_describe_the_served_model(stack: RunningStack) -> None:
    listing = httpx.get(f"{stack.gateway}/v1/styles", headers=stack.auth())
    assert listing.status_code == 200
    style = next(s for s in listing.json()["styles"] if s["name"] == STYLE)
    assert style["versions"] == ["1"] and style["live_version"] == "1"
    assert style["size_multiple"] == 4 and style["architecture"] == "resnet"
    assert {"title", "description", "precision", "preferred_side", "max_side", "preview_url"} <= style.keys()
    one = httpx.get(f"{stack.gateway}/v1/styles/{STYLE}", headers=stack.auth())
    assert one.json() == style
    missing = httpx.get(f"{stack.gateway}/v1/styles/nope", headers=stack.auth())
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "style_not_found"


def test_image_response_then_cache_hit_without_triton(stack: RunningStack, astronaut: np.ndarray, s3) -> None:  # noqa: ANN001
    data = images.encode(images.noisy_crop(astronaut, 150, 210, seed=1), quality=90)
    first = stylize(stack, data, format="webp", quality=80)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "image/webp"
    assert first.headers["X-Pastiche-Cache"] == "miss"
    assert first.headers["X-Pastiche-Model-Version"] == "1"
    assert Image.open(io.BytesIO(first.content)).size == (210, 150)
    output = s3.head_object(Bucket=stack.bucket, Key=first.headers["X-Pastiche-Output-Key"])
    assert output["ContentType"] == "image/webp"
    assert output["Metadata"]["style"] == STYLE and output["Metadata"]["model-version"] == "1"
    assert output["Metadata"]["request-id"] == first.headers["X-Request-Id"]
    assert s3.head_object(Bucket=stack.bucket, Key=first.headers["X-Pastiche-Input-Key"])["ContentType"] == "image/jpeg"

    count_before = parse_batch_stats(httpx.get(stack.triton_metrics).text)[STYLE].inferences
    second = stylize(stack, data, format="webp", quality=80)
    assert second.status_code == 200
    assert second.headers["X-Pastiche-Cache"] == "hit"
    assert second.content == first.content
    assert second.headers["X-Pastiche-Result-Id"] == first.headers["X-Pastiche-Result-Id"]
    assert parse_batch_stats(httpx.get(stack.triton_metrics).text)[STYLE].inferences == count_before
    # A different output parameter is a different result.
    third = stylize(stack, data, format="webp", quality=50)
    assert third.headers["X-Pastiche-Cache"] == "miss"


def test_raw_body_and_json_document_with_presigned_urls(stack: RunningStack, astronaut: np.ndarray) -> None:
    data = images.encode(images.noisy_crop(astronaut, 200, 120, seed=2), "PNG")
    response = httpx.post(
        f"{stack.gateway}/v1/stylize",
        params={"style": STYLE, "format": "jpeg", "quality": 85, "max_side": 100},
        content=data,
        headers=stack.auth() | {"Content-Type": "image/png", "Accept": "application/json", "X-Request-Id": "trace-abc.1"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["request_id"] == "trace-abc.1" == response.headers["X-Request-Id"]
    assert body["cache"] == "miss" and body["model_version"] == "1" and body["style"] == STYLE
    assert (body["input"]["width"], body["input"]["height"]) == (120, 200)
    assert (body["output"]["width"], body["output"]["height"]) == (60, 100)
    assert set(body["timings_ms"]) == {"decode", "queue_infer", "encode", "storage"}
    assert body["timings_ms"]["queue_infer"] > 0
    assert 0 < body["url_expires_in_s"] <= 3600
    assert httpx.get(body["input"]["url"]).content == data
    output = httpx.get(body["output"]["url"])
    assert output.status_code == 200 and Image.open(io.BytesIO(output.content)).format == "JPEG"
    assert "X-Amz-Expires=300" in body["output"]["url"]


def test_results_endpoint_streams_redirects_and_isolates_tenants(stack: RunningStack, astronaut: np.ndarray) -> None:
    data = images.encode(images.noisy_crop(astronaut, 96, 96, seed=3))
    made = stylize(stack, data, tenant="alpha")
    result_id = made.headers["X-Pastiche-Result-Id"]
    url = f"{stack.gateway}/v1/results/{result_id}"
    got = httpx.get(url, headers=stack.auth("alpha"))
    assert got.status_code == 200 and got.content == made.content and got.headers["content-type"] == "image/png"
    redirect = httpx.get(url, params={"redirect": "true"}, headers=stack.auth("alpha"))
    assert redirect.status_code == 307
    assert httpx.get(redirect.headers["location"]).content == made.content
    # Tenant isolation: the other tenant sees nothing, not even that the id exists.
    for response in (httpx.get(url, headers=stack.auth("beta")),
                     httpx.get(url, params={"redirect": "true"}, headers=stack.auth("beta"))):
        assert response.status_code == 404 and response.json()["error"]["code"] == "result_not_found"
    assert httpx.get(f"{stack.gateway}/v1/results/not-an-id", headers=stack.auth()).status_code == 404
    # The same bytes from another tenant are that tenant's own objects.
    other = stylize(stack, data, tenant="beta")
    assert other.headers["X-Pastiche-Cache"] == "miss"
    assert other.headers["X-Pastiche-Output-Key"].startswith("tenants/beta/")


def test_auth_and_rate_limit(stack: RunningStack) -> None:
    styles = f"{stack.gateway}/v1/styles"
    missing = httpx.get(styles)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert httpx.get(styles, headers={"Authorization": "Bearer pk_wrong"}).json()["error"]["code"] == "invalid_api_key"
    codes = [httpx.get(styles, headers=stack.auth("limited")).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = httpx.get(styles, headers=stack.auth("limited"))
    assert limited.json()["error"]["code"] == "rate_limited" and int(limited.headers["retry-after"]) >= 1
    assert httpx.get(styles, headers=stack.auth("alpha")).status_code == 200  # limits are per key


def test_mixed_size_concurrent_requests_are_batched(stack: RunningStack, astronaut: np.ndarray) -> None:
    sizes = [(300, 400), (400, 300), (256, 256), (220, 250), (240, 180), (500, 375),
             (180, 240), (250, 250), (375, 500), (230, 200), (260, 340), (340, 260)]
    bodies = [images.encode(images.noisy_crop(astronaut, h, w, seed=100 + i)) for i, (h, w) in enumerate(sizes)]
    before = parse_batch_stats(httpx.get(stack.triton_metrics).text)[STYLE]

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=120) as client:
            return await asyncio.gather(*(
                client.post(f"{stack.gateway}/v1/stylize", files={"image": ("i.jpg", body, "image/jpeg")},
                            data={"style": STYLE, "max_side": "256"}, headers=stack.auth())
                for body in bodies
            ))

    responses = asyncio.run(send_all())
    assert [r.status_code for r in responses] == [200] * len(sizes)
    assert {r.headers["X-Pastiche-Cache"] for r in responses} == {"miss"}
    after = parse_batch_stats(httpx.get(stack.triton_metrics).text)[STYLE]
    inferences = after.inferences - before.inferences
    executions = after.executions - before.executions
    average = inferences / executions
    print(f"\nmixed-size batching: {inferences:.0f} images in {executions:.0f} executions, average batch {average:.2f}")
    assert inferences == len(sizes)
    assert average > 1.0
    metrics = httpx.get(f"{stack.gateway}/metrics").text
    reported = re.search(rf'^pastiche_gateway_triton_average_batch_size\{{model="{STYLE}"\}} (\S+)$', metrics, re.M)
    assert reported and float(reported.group(1)) > 0
    assert f'pastiche_gateway_bucket_requests_total{{shape="256x256",style="{STYLE}"}}' in metrics


def test_metrics_expose_requests_stages_cache_and_inflight(stack: RunningStack) -> None:
    text = httpx.get(f"{stack.gateway}/metrics").text
    for name in ("pastiche_gateway_requests_total", "pastiche_gateway_request_duration_seconds_bucket",
                 "pastiche_gateway_cache_lookups_total", "pastiche_gateway_inflight_requests",
                 "pastiche_gateway_triton_average_batch_size"):
        assert name in text, name
    for stage in ("decode", "triton", "encode", "storage"):
        assert f'pastiche_gateway_stage_duration_seconds_count{{stage="{stage}"}}' in text
    assert re.search(r'pastiche_gateway_requests_total\{method="POST",route="/v1/stylize",status="200",style="watercolor"\}', text)
    assert 'pastiche_gateway_cache_lookups_total{outcome="hit"}' in text


def test_client_disconnect_cancels_the_work(stack: RunningStack, astronaut: np.ndarray) -> None:
    big = np.kron(images.noisy_crop(astronaut, 500, 500, seed=7), np.ones((2, 2, 1), dtype=np.uint8))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{stack.gateway}/v1/stylize", files={"image": ("big.png", images.encode(big, "PNG"), "image/png")},
                   data={"style": STYLE, "max_side": "1000"}, headers=stack.auth(),
                   timeout=httpx.Timeout(30, read=0.5))

    def gauge(name: str) -> float:
        match = re.search(rf"^{name} (\S+)$", httpx.get(f"{stack.gateway}/metrics").text, re.M)
        return float(match.group(1)) if match else -1.0

    for _ in range(100):
        if gauge("pastiche_gateway_client_disconnects_total") >= 1 and gauge("pastiche_gateway_inflight_requests") == 0:
            break
        asyncio.run(asyncio.sleep(0.1))
    assert gauge("pastiche_gateway_client_disconnects_total") >= 1
    assert gauge("pastiche_gateway_inflight_requests") == 0


def test_health_and_openapi(stack: RunningStack) -> None:
    assert httpx.get(f"{stack.gateway}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{stack.gateway}/readyz").status_code == 200
    spec = httpx.get(f"{stack.gateway}/openapi.json").json()
    assert {"/v1/styles", "/v1/styles/{name}", "/v1/stylize", "/v1/results/{result_id}"} <= spec["paths"].keys()
    body = spec["paths"]["/v1/stylize"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "image/jpeg", "image/png", "image/webp"} <= body.keys()


def test_storage_setup_applies_encryption_and_retention(stack: RunningStack, s3, monkeypatch) -> None:  # noqa: ANN001
    for name, value in {"PASTICHE_S3_ENDPOINT_URL": stack.s3_endpoint,
                        "PASTICHE_S3_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
                        "PASTICHE_S3_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
                        "PASTICHE_S3_BUCKET": "setup-check", "PASTICHE_S3_RETENTION_DAYS": "30"}.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["storage", "setup", "--sse", "AES256"])
    assert result.exit_code == 0, result.output
    assert "created" in result.output
    rules = s3.get_bucket_lifecycle_configuration(Bucket="setup-check")["Rules"]
    assert rules[0]["Expiration"]["Days"] == 30 and rules[0]["Filter"]["Prefix"] == "tenants/"
    encryption = s3.get_bucket_encryption(Bucket="setup-check")["ServerSideEncryptionConfiguration"]
    assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    again = CliRunner().invoke(cli, ["storage", "setup"])
    assert again.exit_code == 0 and "exists" in again.output


def test_objects_are_written_with_server_side_encryption(stack: RunningStack, s3) -> None:  # noqa: ANN001
    storage = Storage(s3, stack.bucket, Encryption(ServerSideEncryption.S3))

    async def put_and_head() -> None:
        await storage.put("tenants/sse/probe", b"x", "application/octet-stream", {"style": "probe"})

    asyncio.run(put_and_head())
    storage.close()
    assert s3.head_object(Bucket=stack.bucket, Key="tenants/sse/probe")["ServerSideEncryption"] == "AES256"

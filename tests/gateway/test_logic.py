"""Pure logic of the gateway: keys, rate limits, shape buckets, result ids, settings, metrics, body limit."""

from __future__ import annotations

import asyncio
import json
import logging

import numpy as np
import pytest
from pydantic import ValidationError

from gateway.auth import KeyConfigError, RateLimiter, bearer_token, hash_key, key_entry, new_key, parse_entries
from gateway.bucket_setup import encryption_configuration, lifecycle_configuration
from gateway.imaging import ImageRejected, bucket_shape, decode_image
from gateway.keys import output_key, output_key_for_result, result_id
from gateway.logs import JsonFormatter, request_id_from
from gateway.metrics import parse_batch_stats
from gateway.middleware import BodyLimitMiddleware
from gateway.pipeline import StylizeRequest
from gateway.settings import GatewaySettings, ServerSideEncryption
from tests.gateway import images


def test_keys_are_stored_hashed_and_parsed() -> None:
    key = new_key()
    entry = key_entry("acme", key, 30)
    assert key not in entry
    parsed = parse_entries([entry, "# a comment", "", key_entry("other", new_key())])
    assert parsed[hash_key(key)].tenant == "acme" and parsed[hash_key(key)].requests_per_minute == 30
    assert len(parsed) == 2
    for bad in ("acme", "acme:nothex", "bad tenant:" + "a" * 64, "acme:" + "a" * 64 + ":0"):
        with pytest.raises(KeyConfigError):
            parse_entries([bad])


def test_bearer_token_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None


def test_rate_limiter_bursts_then_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(default_per_minute=60, burst=3, clock=lambda: now[0])
    assert [limiter.acquire("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.acquire("k")
    assert wait == pytest.approx(1.0)
    assert limiter.acquire("other") == 0.0  # per key
    now[0] += 1.0
    assert limiter.acquire("k") == 0.0
    # A per-key limit overrides the default rate and caps the burst.
    assert [limiter.acquire("slow", 2) == 0.0 for _ in range(3)] == [True, True, False]


@pytest.mark.parametrize(
    ("height", "width", "expected"),
    [(192, 256, (256, 256)), (256, 256, (256, 256)), (300, 512, (512, 512)), (512, 384, (512, 512)),
     (100, 700, (256, 768)), (1101, 20, (1104, 256))],
)
def test_bucket_shapes(height: int, width: int, expected: tuple[int, int]) -> None:
    assert bucket_shape(height, width, (256, 512, 768, 1024), 4) == expected


def test_buckets_respect_the_size_multiple() -> None:
    assert bucket_shape(100, 100, (250,), 8) == (256, 256)
    assert bucket_shape(1030, 10, (256,), 16) == (1040, 256)


def test_result_ids_round_trip_and_stay_in_the_callers_tenant() -> None:
    key = output_key("alpha", "a" * 64, "watercolor", "1", {"format": "png"}, "png")
    rid = result_id(key)
    assert output_key_for_result("alpha", rid) == key
    assert output_key_for_result("beta", rid).startswith("tenants/beta/")
    for bad in ("", "not base64 !", "Li4vLi4vc2VjcmV0", result_id(key) + "x" * 500):
        with pytest.raises(ValueError):
            output_key_for_result("alpha", bad)


def test_cache_key_parameters_ignore_quality_for_png() -> None:
    def request(fmt: str, quality: int) -> StylizeRequest:
        return StylizeRequest("t", b"", None, "1", 512, fmt, quality, "r")  # type: ignore[arg-type]

    assert request("png", 10).key_parameters() == request("png", 90).key_parameters()
    assert request("jpeg", 10).key_parameters() != request("jpeg", 90).key_parameters()


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASTICHE_SHAPE_BUCKETS", "512, 256")
    monkeypatch.setenv("PASTICHE_CORS_ORIGINS", "https://a.example,https://b.example")
    monkeypatch.setenv("PASTICHE_S3_SSE", "aws:kms")
    settings = GatewaySettings()
    assert settings.shape_buckets == (256, 512)
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.s3_sse is ServerSideEncryption.KMS
    with pytest.raises(ValidationError):
        GatewaySettings(presign_ttl_s=7200, presign_max_ttl_s=3600)
    with pytest.raises(ValidationError):
        GatewaySettings(presign_max_ttl_s=30 * 24 * 3600)


def test_batch_stats_from_triton_metrics() -> None:
    text = (
        '# HELP nv_inference_count x\n# TYPE nv_inference_count counter\n'
        'nv_inference_count{model="a",version="1"} 12\nnv_inference_count{model="a",version="2"} 4\n'
        '# HELP nv_inference_exec_count x\n# TYPE nv_inference_exec_count counter\n'
        'nv_inference_exec_count{model="a",version="1"} 3\nnv_inference_exec_count{model="a",version="2"} 1\n'
    )
    stats = parse_batch_stats(text)["a"]
    assert (stats.inferences, stats.executions, stats.average_batch_size) == (16, 4, 4.0)


def test_bucket_setup_documents() -> None:
    assert encryption_configuration(ServerSideEncryption.NONE, None) is None
    kms = encryption_configuration(ServerSideEncryption.KMS, "key-1")["Rules"][0]["ApplyServerSideEncryptionByDefault"]
    assert kms == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "key-1"}
    rule = lifecycle_configuration(14)["Rules"][0]
    assert rule["Expiration"] == {"Days": 14} and rule["Filter"] == {"Prefix": "tenants/"}


def test_decoder_refuses_bombs_from_the_header(astronaut: np.ndarray) -> None:
    with pytest.raises(ImageRejected) as error:
        decode_image(images.png_with_declared_size(100_000, 100_000), 40_000_000)
    assert error.value.status == 413
    with pytest.raises(ImageRejected) as error:
        decode_image(images.animated("GIF"), 40_000_000)
    assert error.value.status == 415
    rotated = decode_image(images.exif_rotated_jpeg(astronaut[:40, :60]), 40_000_000)
    assert rotated.pixels.shape == (60, 40, 3)


def test_request_ids_and_json_logs() -> None:
    assert request_id_from("abc-1.2") == "abc-1.2"
    assert len(request_id_from("bad id\nwith newline")) == 32
    record = logging.LogRecord("pastiche.gateway", logging.INFO, "", 0, "request", None, None)
    record.status = 200
    document = json.loads(JsonFormatter().format(record))
    assert document["message"] == "request" and document["status"] == 200 and document["level"] == "info"


def run_asgi(app: BodyLimitMiddleware, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> list[dict]:
    """Drive ``app`` with a body sent in ``chunks``; returns what it sent."""
    sent: list[dict] = []
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    asyncio.run(app(scope, receive, send))
    return sent


async def reading_app(scope: dict, receive, send) -> None:  # noqa: ANN001
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_body_limit_refuses_declared_and_streamed_oversize() -> None:
    app = BodyLimitMiddleware(reading_app, limit=10)
    declared = run_asgi(app, [(b"content-length", b"11")], [b"x" * 11])
    assert declared[0]["status"] == 413
    streamed = run_asgi(app, [], [b"x" * 6, b"x" * 6])
    assert streamed[0]["status"] == 413 and len(streamed) == 2
    assert json.loads(streamed[1]["body"])["error"]["code"] == "payload_too_large"
    assert run_asgi(app, [], [b"x" * 5, b"x" * 5])[0]["status"] == 200


def test_cors_and_trusted_hosts_are_configurable() -> None:
    from fastapi.testclient import TestClient

    from gateway.app import create_app

    settings = GatewaySettings(cors_origins=("https://app.example",), trusted_hosts=("gateway.example", "*.internal"),
                               triton_metrics_url=None)
    with TestClient(create_app(settings), base_url="http://gateway.example") as client:
        preflight = client.options("/v1/styles", headers={"Origin": "https://app.example",
                                                          "Access-Control-Request-Method": "GET"})
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        assert client.get("/healthz").status_code == 200
        assert client.get("/healthz", headers={"Host": "a.internal"}).status_code == 200
        refused = client.get("/healthz", headers={"Host": "evil.example"})
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_host"
        assert client.get("/healthz", headers={"Host": "internal"}).status_code == 400  # "*.internal" needs a subdomain
        assert client.get("/healthz", headers={"Host": "gateway.example:8080"}).status_code == 200


@pytest.mark.parametrize(
    ("host", "allowed"),
    [("gateway.example", True), ("gateway.example:443", True), ("a.b.internal", True), ("internal", False),
     ("evilinternal", False), ("", False), ("[::1]", False), ("x.gateway.example", False)],
)
def test_host_matching(host: str, allowed: bool) -> None:
    from gateway.middleware import host_allowed

    assert host_allowed(host, ("gateway.example", "*.internal")) is allowed
    assert host_allowed(host, ("*",)) is True


def test_preview_url_prefers_the_bucket_then_a_shipped_file(tmp_path) -> None:  # noqa: ANN001
    from gateway.inference import Style
    from gateway.routes.styles import preview_url
    from gateway.settings import JobSettings
    from pastiche.contract import StyleMetadata

    class SigningStorage:
        def presign(self, key: str, ttl_s: int) -> str:
            return f"https://bucket.example/{key}?ttl={ttl_s}"

    settings = GatewaySettings(triton_metrics_url=None, presign_ttl_s=120)
    job_settings = JobSettings(styles_dir=str(tmp_path))
    (tmp_path / "named").mkdir()
    (tmp_path / "named" / "preview.png").write_bytes(b"png")
    named = Style("named", ("1",), StyleMetadata("T", "D", "resnet", preview_key="previews/named.png"))
    bare = Style("bare", ("1",), StyleMetadata("T", "D", "resnet"))
    # A preview_key wins over a shipped file; with neither there is no URL (the request is never consulted).
    assert preview_url(named, None, SigningStorage(), settings, job_settings) == (
        "https://bucket.example/previews/named.png?ttl=120"
    )
    assert preview_url(bare, None, SigningStorage(), settings, job_settings) is None

"""Signed webhooks against a real local HTTP receiver that fails the first delivery."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from gateway.webhooks import (
    WebhookDestinationRefused,
    backoff_delay,
    blocked_reason,
    check_destination,
    retryable,
    signature,
    verify,
)
from tests.conftest import free_port
from tests.jobs.conftest import STYLE, object_keys, png_bytes, wait_for


class Receiver(ThreadingHTTPServer):
    """Records every delivery; answers 503 to the first ``fail_first`` of them."""

    def __init__(self, port: int, fail_first: int) -> None:
        self.deliveries: list[tuple[float, dict[str, str], bytes]] = []
        self.fail_first = fail_first
        super().__init__(("127.0.0.1", port), ReceiverHandler)


class ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.deliveries.append((time.monotonic(), dict(self.headers), body))
        failing = len(self.server.deliveries) <= self.server.fail_first
        self.send_response(503 if failing else 204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(free_port(), fail_first=1)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def receiver_verifies(secret: str, body: bytes, headers: dict[str, str], tolerance_s: int = 300) -> bool:
    """The receiver-side check exactly as gateway/JOBS.md documents it (standard library only)."""
    timestamp = headers["Pastiche-Timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance_s:
        return False
    expected = "v1=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["Pastiche-Signature"])


@pytest.mark.integration
def test_webhook_is_signed_and_retried_with_backoff(bucket, start_gateway, receiver, astronaut) -> None:  # noqa: ANN001
    gateway = start_gateway(bucket, PASTICHE_JOBS_WEBHOOK_ALLOW_PRIVATE="true")  # the receiver is on loopback
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hooks/pastiche"
    response = httpx.post(f"{gateway.url}/v1/jobs", files={"image": ("p.png", png_bytes(astronaut[:64, :64]), "image/png")},
                          data={"style": STYLE, "max_side": "64", "webhook_url": url}, timeout=30)
    assert response.status_code == 202, response.text
    job = wait_for(gateway.url, response.json()["id"], lambda job: (job["webhook"] or {}).get("delivered"))
    assert job["webhook"]["attempts"] == 2 and job["webhook"]["last_error"] is None

    secret = httpx.get(f"{gateway.url}/v1/webhooks/secret").json()["secret"]
    assert len(receiver.deliveries) == 2
    (first_at, _, _), (second_at, headers, body) = receiver.deliveries
    assert second_at - first_at >= 0.3 * 0.9, "the retry waits for the backoff"
    assert headers["Pastiche-Event"] == "job.succeeded"
    assert receiver_verifies(secret, body, headers)
    assert not receiver_verifies("whsec_wrong", body, headers)
    assert not receiver_verifies(secret, body.replace(b"succeeded", b"failed"), headers)
    delivered = json.loads(body)
    assert delivered["id"] == job["id"] and delivered["status"] == "succeeded"
    assert delivered["items"][0]["output_key"] == job["items"][0]["output_key"]


def test_signature_rejects_replays_and_tampering() -> None:
    body = b'{"id":"j","status":"succeeded"}'
    now = 1_800_000_000
    header = signature("s3cret", now, body)
    assert verify("s3cret", body, str(now), header, now=now + 10)
    assert not verify("s3cret", body, str(now), header, now=now + 301), "an old delivery replayed later"
    assert not verify("s3cret", body, str(now + 1), header, now=now), "timestamp is covered by the signature"
    assert not verify("s3cret", body + b" ", str(now), header, now=now)
    assert not verify("s3cret", body, "yesterday", header, now=now)


def test_backoff_doubles_and_caps_and_only_transient_statuses_retry() -> None:
    assert [backoff_delay(n, 1.0) for n in range(1, 6)] == [1, 2, 4, 8, 16]
    assert backoff_delay(20, 1.0, cap_s=60) == 60
    assert retryable(503) and retryable(429) and retryable(500)
    assert not retryable(400) and not retryable(404) and not retryable(410)


@pytest.mark.integration
def test_webhooks_to_internal_addresses_are_refused_by_default(bucket, s3, start_gateway, receiver, astronaut) -> None:  # noqa: ANN001
    gateway = start_gateway(bucket)
    before = object_keys(s3, bucket, "")
    for url in (f"http://127.0.0.1:{receiver.server_address[1]}/hooks", "http://169.254.169.254/latest/meta-data",
                "http://10.0.0.7/hook", "http://[::1]:8080/hook", "http://localhost/hook"):
        response = httpx.post(f"{gateway.url}/v1/jobs", files={"image": ("p.png", png_bytes(astronaut[:64, :64]), "image/png")},
                              data={"style": STYLE, "webhook_url": url}, timeout=30)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["error"]["code"] == "webhook_url_refused"
    batch = httpx.post(f"{gateway.url}/v1/jobs/batch",
                       json={"style": STYLE, "input_keys": ["tenants/public/x.png"], "webhook_url": "http://192.168.1.1/"})
    assert batch.status_code == 422 and batch.json()["error"]["code"] == "webhook_url_refused"
    assert object_keys(s3, bucket, "") == before, "a refused job stores nothing"
    assert receiver.deliveries == []


@pytest.mark.parametrize(
    ("address", "blocked"),
    [("127.0.0.1", True), ("10.1.2.3", True), ("172.16.0.1", True), ("192.168.0.1", True), ("169.254.169.254", True),
     ("100.64.0.1", True), ("0.0.0.0", True), ("224.0.0.1", True), ("::1", True), ("fe80::1%eth0", True),
     ("fd00::1", True), ("::ffff:127.0.0.1", True), ("8.8.8.8", False), ("2606:4700:4700::1111", False)],
)
def test_blocked_reason_covers_internal_ranges(address: str, blocked: bool) -> None:
    assert (blocked_reason(address) is not None) is blocked


def test_check_destination_resolves_names_and_can_be_relaxed() -> None:
    with pytest.raises(WebhookDestinationRefused, match="loopback"):
        asyncio.run(check_destination("http://localhost:9/x", allow_private=False))
    with pytest.raises(WebhookDestinationRefused, match="does not resolve"):
        asyncio.run(check_destination("http://no-such-host.invalid/x", allow_private=False))
    asyncio.run(check_destination("http://localhost:9/x", allow_private=True))

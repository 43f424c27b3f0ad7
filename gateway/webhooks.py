"""Signed completion webhooks: per-tenant secrets in S3, HMAC-SHA256 signatures, retries with backoff.

Each delivery is a ``POST`` of the job document (JSON) with

- ``Pastiche-Timestamp: <unix seconds>`` and
- ``Pastiche-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``.

Signing the timestamp together with the body lets a receiver reject replays of an old delivery
(see gateway/JOBS.md for the receiver's verification snippet).

Destinations are checked when a job is submitted and again before every delivery: a URL whose
host resolves to a loopback, private, link-local, multicast or otherwise reserved address is
refused unless ``PASTICHE_JOBS_WEBHOOK_ALLOW_PRIVATE`` is set (development stacks), so a tenant
cannot make the gateway call into its own network. Redirects are never followed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import secrets
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from gateway.jobs import JobStore, PreconditionFailed
from gateway.keys import webhook_secret_key

SIGNATURE_HEADER = "Pastiche-Signature"
TIMESTAMP_HEADER = "Pastiche-Timestamp"
EVENT_HEADER = "Pastiche-Event"
DELIVERY_HEADER = "Pastiche-Delivery"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=<hex>``: HMAC-SHA256 keyed by ``secret`` over ``b"<timestamp>." + body``."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def verify(secret: str, body: bytes, timestamp_header: str, signature_header: str,
           tolerance_s: float = 300, now: float | None = None) -> bool:
    """Receiver-side check: signature matches and the timestamp is within ``tolerance_s``."""
    try:
        timestamp = int(timestamp_header)
    except ValueError:
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), signature_header)


def backoff_delay(attempt: int, base_s: float, cap_s: float = 300.0) -> float:
    """Delay before retry number ``attempt`` (1-based): ``base * 2**(attempt-1)``, capped."""
    return min(cap_s, base_s * 2 ** (attempt - 1))


def retryable(status: int) -> bool:
    """Server errors, timeouts and rate limiting are retried; other 4xx mean the receiver said no."""
    return status >= 500 or status in {408, 409, 425, 429}


async def tenant_secret(store: JobStore, tenant: str) -> str:
    """The tenant's signing secret, created once on first use (concurrent creators agree)."""
    key = webhook_secret_key(tenant)
    try:
        document, _ = await store.get_json(key)
        return document["secret"]
    except KeyError:
        pass
    candidate = "whsec_" + secrets.token_hex(32)
    try:
        await store.put_json(key, {"secret": candidate, "created_at": time.time()}, IfNoneMatch="*")
        return candidate
    except PreconditionFailed:
        document, _ = await store.get_json(key)
        return document["secret"]


@dataclass(frozen=True)
class Attempt:
    """Outcome of one delivery attempt."""

    ok: bool
    retry: bool
    detail: str


class WebhookDestinationRefused(Exception):
    """The webhook URL points somewhere the gateway must not call."""


def blocked_reason(address: str) -> str | None:
    """Why the gateway must not call ``address`` (an IP literal), or ``None`` if it is a public address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for reason, hit in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("private", ip.is_private),
        ("multicast", ip.is_multicast),
        ("unspecified", ip.is_unspecified),
        ("reserved", ip.is_reserved or not ip.is_global),
    ):
        if hit:
            return f"{address} is a {reason} address"
    return None


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IP literals resolve to themselves)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


async def check_destination(url: str, allow_private: bool) -> None:
    """Raise :class:`WebhookDestinationRefused` unless every address of ``url``'s host is public."""
    if allow_private:
        return
    parts = urlsplit(url)
    if not parts.hostname:
        raise WebhookDestinationRefused(f"webhook URL {url!r} has no host")
    try:
        addresses = await resolve(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except OSError as error:
        raise WebhookDestinationRefused(f"webhook host {parts.hostname!r} does not resolve ({error})") from error
    for address in addresses:
        reason = blocked_reason(address)
        if reason is not None:
            raise WebhookDestinationRefused(
                f"webhook host {parts.hostname!r} resolves to {reason}; webhooks go to public addresses only"
            )


async def deliver_once(client: httpx.AsyncClient, url: str, secret: str, body: bytes,
                       event: str, delivery_id: str, timeout_s: float, allow_private: bool = False) -> Attempt:
    """POST ``body`` once, signed with a fresh timestamp, after checking the destination again
    (its DNS may have changed since the job was submitted)."""
    try:
        await check_destination(url, allow_private)
    except WebhookDestinationRefused as error:
        return Attempt(False, False, str(error))
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        EVENT_HEADER: event,
        DELIVERY_HEADER: delivery_id,
        "User-Agent": "pastiche-webhooks/1",
    }
    try:
        response = await client.post(url, content=body, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as error:
        return Attempt(False, True, f"{type(error).__name__}: {error}")
    if 200 <= response.status_code < 300:
        return Attempt(True, False, f"HTTP {response.status_code}")
    return Attempt(False, retryable(response.status_code), f"HTTP {response.status_code}")


async def sleep_backoff(attempt: int, base_s: float) -> None:
    """Wait before the next attempt."""
    await asyncio.sleep(backoff_delay(attempt, base_s))

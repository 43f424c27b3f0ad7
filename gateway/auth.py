"""API keys and per-key rate limits.

Keys are never stored in plain text: the gateway is configured with ``tenant:sha256hex`` pairs
(optionally ``:requests_per_minute``) and hashes the presented bearer token to look it up.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

_ENTRY = re.compile(r"^(?P<tenant>[A-Za-z0-9][A-Za-z0-9._-]{0,63}):(?P<digest>[0-9a-fA-F]{64})(?::(?P<rpm>[1-9][0-9]*))?$")

KEY_PREFIX = "pk_"


class KeyConfigError(ValueError):
    """An API key entry in the settings is malformed."""


@dataclass(frozen=True)
class ApiKey:
    """One configured key: who it belongs to and how fast it may call."""

    tenant: str
    digest: str
    requests_per_minute: int | None = None


def hash_key(key: str) -> str:
    """Hex sha256 of a plaintext key, as stored in the settings."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh random API key."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_entry(tenant: str, key: str, requests_per_minute: int | None = None) -> str:
    """The settings entry (``tenant:sha256[:rpm]``) for a plaintext key."""
    entry = f"{tenant}:{hash_key(key)}"
    return f"{entry}:{requests_per_minute}" if requests_per_minute else entry


def parse_entries(entries: list[str] | tuple[str, ...]) -> dict[str, ApiKey]:
    """Key digest → :class:`ApiKey`; blank lines and ``#`` comments are skipped."""
    keys: dict[str, ApiKey] = {}
    for raw in entries:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _ENTRY.match(line)
        if not match:
            raise KeyConfigError(f"API key entry {line[:20]!r}… is not tenant:sha256hex[:requests_per_minute]")
        digest = match["digest"].lower()
        rpm = int(match["rpm"]) if match["rpm"] else None
        keys[digest] = ApiKey(match["tenant"], digest, rpm)
    return keys


def load_keys(entries: tuple[str, ...], keys_file: str | None) -> dict[str, ApiKey]:
    """Keys from the settings list plus the optional keys file."""
    lines = list(entries)
    if keys_file:
        lines += Path(keys_file).read_text().splitlines()
    return parse_entries(lines)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, or ``None``."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    """Token buckets, one per key: ``rate`` requests per minute with ``burst`` capacity."""

    default_per_minute: int
    burst: int
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def acquire(self, key: str, per_minute: int | None = None) -> float:
        """Take one token; returns 0 when allowed, else the seconds until a token is available."""
        rate = (per_minute or self.default_per_minute) / 60.0
        capacity = float(min(self.burst, per_minute)) if per_minute else float(self.burst)
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(capacity, now)
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))

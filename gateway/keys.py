"""The S3 key scheme: content-addressed and scoped by tenant. The only place keys are built.

- input:  ``tenants/<tenant>/inputs/<sha256 of the uploaded bytes>``
- output: ``tenants/<tenant>/outputs/<input sha256>/<style>/v<version>/<params digest>.<ext>``

Identical requests map to identical keys, which is what makes the result cache and idempotent
retries safe.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _segment(value: str, what: str) -> str:
    if not _SAFE.match(value):
        raise ValueError(f"{what} {value!r} cannot be used in an S3 key")
    return value


def input_key(tenant: str, input_sha256: str) -> str:
    """Key of an uploaded image."""
    return f"tenants/{_segment(tenant, 'tenant')}/inputs/{_segment(input_sha256, 'hash')}"


def params_digest(params: dict[str, str | int]) -> str:
    """Short stable digest of the output-affecting parameters."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return sha256_hex(canonical.encode())[:16]


def output_key(tenant: str, input_sha256: str, style: str, version: str, params: dict[str, str | int], ext: str) -> str:
    """Key of a stylized result."""
    return (
        f"tenants/{_segment(tenant, 'tenant')}/outputs/{_segment(input_sha256, 'hash')}/"
        f"{_segment(style, 'style')}/v{_segment(version, 'version')}/{params_digest(params)}.{ext}"
    )


_OUTPUT = re.compile(
    r"^tenants/(?P<tenant>[^/]+)/outputs/(?P<rest>[0-9a-f]{64}/[A-Za-z0-9][A-Za-z0-9._-]{0,127}/v[A-Za-z0-9][A-Za-z0-9._-]{0,127}/[0-9a-f]{16}\.(?:png|jpeg|webp))$"
)


def result_id(output: str) -> str:
    """The public id of a result: its output key without the tenant prefix, base64url-encoded.

    The id is derived from the content-addressed key, so it survives restarts without an index,
    and the tenant is added back from the caller's credentials: another tenant's id names a key
    under the caller's own prefix, which does not exist (404).
    """
    match = _OUTPUT.match(output)
    if not match:
        raise ValueError(f"{output!r} is not an output key")
    return base64.urlsafe_b64encode(match["rest"].encode()).decode().rstrip("=")


def output_key_for_result(tenant: str, result: str) -> str:
    """The output key a result id names within ``tenant``; ``ValueError`` for a malformed id."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,400}", result):
        raise ValueError("malformed result id")
    try:
        rest = base64.urlsafe_b64decode(result + "=" * (-len(result) % 4)).decode()
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError("malformed result id") from error
    key = f"tenants/{_segment(tenant, 'tenant')}/outputs/{rest}"
    if not _OUTPUT.match(key):
        raise ValueError("malformed result id")
    return key


def job_key(tenant: str, job_id: str) -> str:
    """Key of a job record (JSON, updated by compare-and-swap on its ETag)."""
    return f"tenants/{_segment(tenant, 'tenant')}/jobs/{_segment(job_id, 'job id')}.json"


JOB_QUEUE_PREFIX = "queue/jobs/"
"""Prefix of the cross-tenant queue markers that workers list to find claimable jobs."""


def job_queue_key(tenant: str, job_id: str) -> str:
    """Queue marker of a job that still needs a worker (created once, deleted when fully done)."""
    return f"{JOB_QUEUE_PREFIX}{_segment(tenant, 'tenant')}/{_segment(job_id, 'job id')}"


def parse_job_queue_key(key: str) -> tuple[str, str]:
    """``(tenant, job_id)`` of a queue marker key."""
    tenant, job_id = key[len(JOB_QUEUE_PREFIX):].split("/", 1)
    return _segment(tenant, "tenant"), _segment(job_id, "job id")


def idempotency_record_key(tenant: str, idempotency_key: str) -> str:
    """Key of the create-once mapping from a client's ``Idempotency-Key`` to its job id."""
    return f"tenants/{_segment(tenant, 'tenant')}/idempotency/{sha256_hex(idempotency_key.encode())}"


def webhook_secret_key(tenant: str) -> str:
    """Key of the tenant's webhook signing secret (created once, on first use)."""
    return f"tenants/{_segment(tenant, 'tenant')}/webhook-secret"


def tenant_prefix(tenant: str) -> str:
    """Prefix every object a tenant owns lives under."""
    return f"tenants/{_segment(tenant, 'tenant')}/"


def is_safe_segment(value: str) -> bool:
    """Whether ``value`` may be used as one segment of a key (or of a path built from a name)."""
    return bool(_SAFE.match(value))

"""The S3 key scheme is content-addressed, tenant-scoped and refuses unsafe segments."""

from __future__ import annotations

import pytest

from gateway.keys import input_key, output_key, sha256_hex


def test_keys_are_content_addressed_and_scoped_by_tenant() -> None:
    digest = sha256_hex(b"photo")
    assert input_key("acme", digest) == f"tenants/acme/inputs/{digest}"
    a = output_key("acme", digest, "mosaic", "2", {"max_side": 512, "format": "png"}, "png")
    b = output_key("acme", digest, "mosaic", "2", {"format": "png", "max_side": 512}, "png")
    assert a == b
    assert a.startswith(f"tenants/acme/outputs/{digest}/mosaic/v2/")
    assert output_key("other", digest, "mosaic", "2", {"max_side": 512}, "png").startswith("tenants/other/")


@pytest.mark.parametrize("tenant", ["../etc", "a/b", "", "x" * 200])
def test_unsafe_segments_are_refused(tenant: str) -> None:
    with pytest.raises(ValueError):
        input_key(tenant, sha256_hex(b"x"))

"""Hostile and awkward input against the real stack: exact status, JSON reason, and nothing stored when refused."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import numpy as np
import pytest
from PIL import Image

from deploy.local_s3 import LOCAL_CREDENTIALS
from pastiche.s3 import s3_client
from tests.conftest import RunningStack
from tests.gateway import images
from tests.gateway.test_api import STYLE, stored_keys

pytestmark = pytest.mark.integration

MAX_UPLOAD = 20 * 1024 * 1024  # the gateway's default body limit


@dataclass(frozen=True)
class Case:
    """One request: multipart ``files``/``data`` or a raw ``content`` body, and what must come back."""

    name: str
    build: Callable[[np.ndarray], dict]
    status: int
    code: str | None = None


def multipart(data: bytes, content_type: str = "image/jpeg", field_name: str = "image", **params: str) -> dict:
    return {"files": {field_name: ("upload", data, content_type)}, "data": {"style": STYLE, **params}}


def raw(data: bytes | object, content_type: str, **params: str) -> dict:
    return {"content": data, "headers": {"Content-Type": content_type}, "params": {"style": STYLE, **params}}


def small(photo: np.ndarray) -> np.ndarray:
    return photo[100:164, 150:230]


def chunked_oversized() -> object:
    def chunks():  # noqa: ANN202 - a generator makes httpx send Transfer-Encoding: chunked
        block = b"\xff" * (1024 * 1024)
        for _ in range(MAX_UPLOAD // len(block) + 2):
            yield block
    return chunks()


REFUSED = [
    Case("truncated JPEG", lambda p: multipart(images.encode(p)[:2000]), 422, "corrupt_image"),
    Case("zero bytes (multipart)", lambda p: multipart(b""), 422, "empty_image"),
    Case("zero bytes (raw body)", lambda p: raw(b"", "image/jpeg"), 422, "empty_image"),
    Case("text with image content type", lambda p: multipart(b"hello, I am not a picture" * 10), 415, "unsupported_media_type"),
    Case("PNG declaring 100000x100000", lambda p: multipart(images.png_with_declared_size(100_000, 100_000), "image/png"), 413, "too_many_pixels"),
    Case("PNG declaring 8000x8000 (over max_pixels)", lambda p: multipart(images.png_with_declared_size(8000, 8000), "image/png"), 413, "too_many_pixels"),
    Case("animated GIF", lambda p: multipart(images.animated("GIF"), "image/gif"), 415, "unsupported_media_type"),
    Case("animated WebP", lambda p: multipart(images.animated("WEBP"), "image/webp"), 422, "animated_image"),
    Case("BMP", lambda p: multipart(images.encode(small(p), "BMP"), "image/bmp"), 415, "unsupported_media_type"),
    Case("oversized body (Content-Length)", lambda p: raw(b"\xff" * (MAX_UPLOAD + 1), "image/jpeg"), 413, "payload_too_large"),
    Case("oversized body (chunked)", lambda p: raw(chunked_oversized(), "image/jpeg"), 413, "payload_too_large"),
    Case("wrong file field name", lambda p: multipart(images.encode(small(p)), field_name="file"), 422, "invalid_request"),
    Case("wrong parameter name", lambda p: multipart(images.encode(small(p)), styel="x"), 422, "invalid_parameters"),
    Case("missing style", lambda p: {"files": {"image": ("a.jpg", images.encode(small(p)), "image/jpeg")}}, 422, "invalid_parameters"),
    Case("raw body with text/plain", lambda p: raw(images.encode(small(p)), "text/plain"), 415, "unsupported_media_type"),
    Case("JSON body", lambda p: {"json": {"image": "aGVsbG8=", "style": STYLE}}, 415, "unsupported_media_type"),
    Case("unsupported output format", lambda p: multipart(images.encode(small(p)), format="gif"), 422, "invalid_parameters"),
    Case("quality out of range", lambda p: multipart(images.encode(small(p)), format="jpeg", quality="0"), 422, "invalid_parameters"),
    Case("max_side above the style limit", lambda p: multipart(images.encode(small(p)), max_side="5000"), 422, "invalid_parameters"),
    Case("max_side not a number", lambda p: multipart(images.encode(small(p)), max_side="big"), 422, "invalid_parameters"),
    Case("unknown style", lambda p: {**multipart(images.encode(small(p))), "data": {"style": "nope"}}, 404, "style_not_found"),
    Case("unknown version", lambda p: multipart(images.encode(small(p)), version="99"), 404, "version_not_found"),
]


@dataclass(frozen=True)
class Accepted:
    name: str
    build: Callable[[np.ndarray], bytes]
    content_type: str
    expected_size: Callable[[np.ndarray], tuple[int, int]] = field(default=lambda p: (small(p).shape[1], small(p).shape[0]))


ACCEPTED = [
    Accepted("CMYK JPEG", lambda p: images.cmyk_jpeg(small(p)), "image/jpeg"),
    Accepted("16-bit greyscale PNG", lambda p: images.png16(small(p)), "image/png"),
    Accepted("EXIF-rotated JPEG", lambda p: images.exif_rotated_jpeg(small(p)), "image/jpeg",
             lambda p: (small(p).shape[0], small(p).shape[1])),
    Accepted("palette PNG with transparency", lambda p: images.palette_png_with_transparency(small(p)), "image/png"),
    Accepted("content type that lies (PNG sent as image/jpeg)", lambda p: images.encode(small(p), "PNG"), "image/jpeg"),
]


@pytest.fixture(scope="module")
def s3(stack: RunningStack):  # noqa: ANN201
    return s3_client(stack.s3_endpoint, **LOCAL_CREDENTIALS)


@pytest.mark.parametrize("case", REFUSED, ids=[case.name for case in REFUSED])
def test_refused_input_gets_its_status_and_stores_nothing(case: Case, stack: RunningStack, astronaut: np.ndarray, s3) -> None:  # noqa: ANN001
    before = stored_keys(s3, stack.bucket)
    request = case.build(astronaut)
    request["headers"] = {**request.get("headers", {}), **stack.auth("beta")}
    response = httpx.post(f"{stack.gateway}/v1/stylize", timeout=60, **request)
    assert response.status_code == case.status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["message"]
    if case.code:
        assert error["code"] == case.code
    assert stored_keys(s3, stack.bucket) == before


@pytest.mark.parametrize("case", ACCEPTED, ids=[case.name for case in ACCEPTED])
def test_awkward_but_valid_images_are_converted(case: Accepted, stack: RunningStack, astronaut: np.ndarray, s3) -> None:  # noqa: ANN001
    response = httpx.post(
        f"{stack.gateway}/v1/stylize",
        files={"image": ("upload", case.build(astronaut), case.content_type)},
        data={"style": STYLE}, headers=stack.auth("beta"), timeout=60,
    )
    assert response.status_code == 200, response.text
    output = Image.open(io.BytesIO(response.content))
    assert output.mode == "RGB"
    assert output.size == case.expected_size(astronaut)
    assert {response.headers["X-Pastiche-Input-Key"], response.headers["X-Pastiche-Output-Key"]} <= stored_keys(s3, stack.bucket)


def test_bad_input_case_count() -> None:
    """The closing note reports this number."""
    print(f"\nbad-input cases: {len(REFUSED)} refused + {len(ACCEPTED)} awkward-but-valid = {len(REFUSED) + len(ACCEPTED)}")
    assert len(REFUSED) + len(ACCEPTED) >= 10

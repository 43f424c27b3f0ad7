"""The thin vertical slice, end to end: gateway → Triton (python backend, ONNX Runtime) → S3."""

from __future__ import annotations

import io
import re

import httpx
import numpy as np
import pytest
from PIL import Image

from deploy.local_s3 import LOCAL_CREDENTIALS
from export.styles import BUNDLED_STYLES
from pastiche.s3 import s3_client
from tests.conftest import RunningStack

pytestmark = pytest.mark.integration

STYLE = "watercolor"


def inference_count(metrics_url: str, model: str) -> float:
    """Triton's ``nv_inference_count`` for ``model`` summed over versions."""
    text = httpx.get(metrics_url).text
    pattern = re.compile(rf'^nv_inference_count\{{model="{re.escape(model)}",version="[^"]*"\}} (\S+)$', re.M)
    return sum(float(value) for value in pattern.findall(text))


def jpeg_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def test_stylize_stores_input_and_output_and_runs_on_triton(stack: RunningStack, astronaut: np.ndarray) -> None:
    photo = astronaut[:300, :420]  # not a multiple of 4 in width: exercises pad and crop
    before = inference_count(stack.triton_metrics, STYLE)
    response = httpx.post(
        f"{stack.gateway}/v1/stylize",
        files={"image": ("astronaut.jpg", jpeg_bytes(photo), "image/jpeg")},
        data={"style": STYLE},
        headers=stack.auth(),
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    output = Image.open(io.BytesIO(response.content))
    assert output.size == (420, 300)

    s3 = s3_client(stack.s3_endpoint, **LOCAL_CREDENTIALS)
    input_key = response.headers["X-Pastiche-Input-Key"]
    output_key = response.headers["X-Pastiche-Output-Key"]
    stored_input = s3.get_object(Bucket=stack.bucket, Key=input_key)
    assert stored_input["ContentType"] == "image/jpeg"
    stored_output = s3.get_object(Bucket=stack.bucket, Key=output_key)["Body"].read()
    assert stored_output == response.content
    assert inference_count(stack.triton_metrics, STYLE) >= before + 1


def test_styles_lists_every_bundled_style_with_its_preview(stack: RunningStack) -> None:
    body = httpx.get(f"{stack.gateway}/v1/styles", headers=stack.auth()).json()
    listed = {style["name"]: style for style in body["styles"]}
    assert set(listed) == set(BUNDLED_STYLES)
    for name, style in BUNDLED_STYLES.items():
        assert listed[name]["title"] == style.title and listed[name]["architecture"] == style.family
        preview = httpx.get(listed[name]["preview_url"])
        assert preview.status_code == 200 and preview.content == style.preview.read_bytes()
    one = httpx.get(f"{stack.gateway}/v1/styles/{STYLE}", headers=stack.auth()).json()
    assert one["preview_url"] == listed[STYLE]["preview_url"]


def test_unknown_style_is_404_with_json_reason(stack: RunningStack, astronaut: np.ndarray) -> None:
    response = httpx.post(
        f"{stack.gateway}/v1/stylize",
        files={"image": ("a.jpg", jpeg_bytes(astronaut[:64, :64]), "image/jpeg")},
        data={"style": "no-such-style"},
        headers=stack.auth(),
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "style_not_found"


def test_non_image_upload_is_4xx_with_json_reason_and_nothing_stored(stack: RunningStack) -> None:
    s3 = s3_client(stack.s3_endpoint, **LOCAL_CREDENTIALS)
    before = s3.list_objects_v2(Bucket=stack.bucket).get("KeyCount", 0)
    response = httpx.post(
        f"{stack.gateway}/v1/stylize",
        files={"image": ("notes.jpg", b"this is plain text, not a picture", "image/jpeg")},
        data={"style": STYLE},
        headers=stack.auth(),
    )
    assert 400 <= response.status_code < 500
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert s3.list_objects_v2(Bucket=stack.bucket).get("KeyCount", 0) == before


def test_readyz_reports_triton_and_s3(stack: RunningStack) -> None:
    response = httpx.get(f"{stack.gateway}/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"triton": "ok", "s3": "ok"}

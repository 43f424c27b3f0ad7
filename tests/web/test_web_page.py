"""The web page end to end in headless Chromium (Debian's, driven by Playwright) against a real gateway."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from export.styles import BUNDLED_STYLES, STYLES_DIR
from tests.jobs.conftest import STYLE

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
API_KEY = "pk_test_web"
ARTIFACTS = Path("test-artifacts")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[object]:
    if shutil.which("chromium") is None and not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (make test installs it via `make system-deps`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            accept_downloads=True, viewport={"width": 1280, "height": 1000},
        )
        try:
            yield context.new_page()
        finally:
            context.close()


@pytest.fixture
def web_gateway(bucket, start_gateway):  # noqa: ANN001, ANN201
    """A gateway showing the shipped styles' real before/after previews."""
    key_entry = f"web:{hashlib.sha256(API_KEY.encode()).hexdigest()}"
    return start_gateway(bucket, PASTICHE_JOBS_STYLES_DIR=str(STYLES_DIR), PASTICHE_API_KEYS=key_entry)


def test_upload_preview_result_and_download(browser_page, web_gateway, astronaut: np.ndarray, tmp_path: Path) -> None:  # noqa: ANN001
    page = browser_page
    sent_auth: list[str | None] = []
    page.on("request", lambda request: sent_auth.append(request.headers.get("authorization"))
            if "/v1/jobs" in request.url else None)
    page.goto(web_gateway.url)
    # Without the key the gateway refuses, and the page says so in the API's words.
    page.locator("#message").wait_for(state="visible")
    assert "send an API key" in page.text_content("#message")
    page.fill("#api-key", API_KEY)
    page.dispatch_event("#api-key", "change")
    card = page.locator(f'.style-card[data-style="{STYLE}"]')
    card.wait_for()
    # Every bundled style has a card with its real preview; the first one starts selected.
    cards = page.locator(".style-card")
    assert sorted(cards.evaluate_all("cards => cards.map(c => c.dataset.style)")) == sorted(BUNDLED_STYLES)
    assert cards.first.get_attribute("aria-checked") == "true"
    page.wait_for_function(
        "[...document.querySelectorAll('.style-card img')].every(img => img.complete && img.naturalWidth > 0)"
    )
    card.click()
    assert card.get_attribute("aria-checked") == "true"
    assert page.locator('.style-card[aria-checked="true"]').count() == 1

    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(astronaut[:384, :512]).save(photo, quality=92)
    assert not page.is_visible("#download") and not page.is_visible("#result")
    page.set_input_files("#file-input", str(photo))
    page.wait_for_function("document.getElementById('result-label').textContent.startsWith('Preview')", timeout=60_000)
    assert page.text_content("#result-size") == "256×192"
    page.wait_for_selector("#download:not([hidden])", timeout=90_000)
    assert page.text_content("#result-label") == "Full resolution"
    assert page.text_content("#result-size") == "512×384"
    assert page.text_content("#original-size") == "512×384"
    assert sent_auth and all(value == f"Bearer {API_KEY}" for value in sent_auth)
    assert page.evaluate("localStorage.getItem('pastiche.apiKey')") == API_KEY

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web_page.png"), full_page=True)
    with page.expect_download() as download_info:
        page.click("#download")
    download = download_info.value
    assert download.suggested_filename == f"astronaut-{STYLE}.png"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert Image.open(saved).size == (512, 384)


def test_rejected_file_shows_the_api_error_message(browser_page, web_gateway, tmp_path: Path) -> None:  # noqa: ANN001
    page = browser_page
    page.goto(web_gateway.url)
    page.evaluate(f"localStorage.setItem('pastiche.apiKey', '{API_KEY}')")
    page.reload()
    page.locator(".style-card").first.wait_for()
    page.set_input_files("#file-input", files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"just text"}])
    message = page.locator("#message")
    message.wait_for(state="visible", timeout=30_000)
    assert message.text_content() == "not a JPEG, PNG or WebP image (HTTP 415)"
    assert not page.is_visible("#download") and not page.is_visible("#result")
    page.wait_for_function("document.getElementById('original').hidden")
    page.set_input_files("#file-input", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"x"}])
    page.wait_for_function("document.getElementById('message').textContent.includes('notes.txt')")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web_page_rejected.png"))


def test_preview_endpoint_serves_file_or_json_404(web_gateway) -> None:  # noqa: ANN001
    found = httpx.get(f"{web_gateway.url}/v1/styles/{STYLE}/preview")  # public, like the page itself
    assert found.status_code == 200 and found.headers["content-type"] == "image/png"
    assert found.content == BUNDLED_STYLES[STYLE].preview.read_bytes()
    missing = httpx.get(f"{web_gateway.url}/v1/styles/other-style/preview")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "preview_not_found"
    page = httpx.get(web_gateway.url)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert httpx.get(f"{web_gateway.url}/static/app.js").status_code == 200

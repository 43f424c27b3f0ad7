"""The dashboard, alerts and autoscaling rule only use metrics the running stack really exports.

Scrapes the bundled Triton and the gateway of the session's real stack after one request of each
kind the dashboard plots (a success, a rejected upload), so labelled families have samples.
"""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from deploy.monitoring.metrics import Source, missing_from_exposition
from tests.conftest import RunningStack
from tests.integration.test_end_to_end import STYLE, jpeg_bytes

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def scrapes(stack: RunningStack, astronaut: np.ndarray) -> dict[Source, str]:
    auth = stack.auth("alpha")
    ok = httpx.post(
        f"{stack.gateway}/v1/stylize",
        files={"image": ("a.jpg", jpeg_bytes(astronaut[:96, :96]), "image/jpeg")},
        data={"style": STYLE},
        headers=auth,
        timeout=60,
    )
    assert ok.status_code == 200, ok.text
    rejected = httpx.post(
        f"{stack.gateway}/v1/stylize",
        files={"image": ("a.jpg", b"not an image", "image/jpeg")},
        data={"style": STYLE},
        headers=auth,
    )
    assert rejected.status_code == 415
    return {
        Source.TRITON: httpx.get(stack.triton_metrics).text,
        Source.GATEWAY: httpx.get(f"{stack.gateway}/metrics").text,
    }


@pytest.mark.parametrize("source", [Source.TRITON, Source.GATEWAY])
def test_every_declared_metric_is_in_a_live_scrape(scrapes: dict[Source, str], source: Source) -> None:
    assert missing_from_exposition(scrapes[source], source) == []

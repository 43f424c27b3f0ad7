"""Training code limits thread counts per process; keep that from leaking into other tests."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import pytest
import torch


@pytest.fixture(autouse=True)
def restore_thread_counts() -> Iterator[None]:
    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    yield
    torch.set_num_threads(torch_threads)
    cv2.setNumThreads(cv2_threads)

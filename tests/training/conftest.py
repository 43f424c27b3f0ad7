"""Shared fixtures: one tiny ``pastiche train`` run, and thread counts that do not leak between tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest
import torch
from typer.testing import CliRunner

from pastiche.cli import app

TINY_ARGS = ["--width", "4", "--n-blocks", "1", "--crop", "32", "--batch-size", "1", "--checkpoint-every", "1"]
"""A ResNet small enough that a training step and a held-out evaluation take well under a second."""


@pytest.fixture(autouse=True)
def restore_thread_counts() -> Iterator[None]:
    # The training commands limit thread counts for the whole process.
    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    yield
    torch.set_num_threads(torch_threads)
    cv2.setNumThreads(cv2_threads)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-step ``pastiche train cartoon`` run directory."""
    out = tmp_path_factory.mktemp("tiny") / "run"
    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    result = CliRunner().invoke(app, ["train", "cartoon", "--steps", "2", *TINY_ARGS, "--out", str(out)])
    torch.set_num_threads(torch_threads)
    cv2.setNumThreads(cv2_threads)
    assert result.exit_code == 0, result.output
    return out

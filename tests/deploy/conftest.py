"""Fixtures of the deploy tests: pinned versions and the rendered overlays."""

from __future__ import annotations

import pytest

from tests.deploy.rendering import DEPLOY, OVERLAYS, kustomize, read_env_file


@pytest.fixture(scope="session")
def versions() -> dict[str, str]:
    return read_env_file(DEPLOY / "versions" / "versions.env")


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict]]:
    """Every overlay under deploy/k8s/overlays, rendered once per test session."""
    return {name: kustomize(DEPLOY / "k8s" / "overlays" / name) for name in OVERLAYS}

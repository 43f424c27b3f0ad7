"""The web tests reuse the per-test bucket and gateway factory of the jobs tests."""

from tests.jobs.conftest import bucket, s3, start_gateway  # noqa: F401 - pytest fixtures

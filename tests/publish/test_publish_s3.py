"""The CLI against an S3 repository (moto server) that the bundled Triton serves directly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploy.local_s3 import LOCAL_CREDENTIALS, LocalS3Server
from deploy.model_store import S3Store
from deploy.repository import parse_config
from deploy.triton import TritonServer
from deploy.triton_control import TritonControl
from pastiche.cli import app
from pastiche.s3 import s3_client
from tests.conftest import free_port
from tests.publish.conftest import triton_ports

pytestmark = pytest.mark.integration

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
    "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def s3_triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """(S3 endpoint, repository URL, Triton URL) with Triton serving ``s3://…/models/repo``."""
    workdir = tmp_path_factory.mktemp("s3")
    with LocalS3Server(workdir, free_port()) as s3:
        s3.create_bucket("models")
        store = S3Store("models", "repo", s3.endpoint_url, s3_client(s3.endpoint_url, **LOCAL_CREDENTIALS))
        store.initialize()
        with TritonServer(store.triton_location(), workdir / "triton", triton_ports(), load_models=(), extra_env=AWS_ENV) as triton:
            yield s3.endpoint_url, "s3://models/repo", triton.http_url


@pytest.fixture
def cli(s3_triton: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    endpoint, repository, triton = s3_triton
    for key, value in {**AWS_ENV, "AWS_ENDPOINT_URL": endpoint, "PASTICHE_REPOSITORY": repository, "PASTICHE_TRITON_URL": triton}.items():
        monkeypatch.setenv(key, value)
    return CliRunner()


def test_publish_list_rollback_retire_on_s3(cli: CliRunner, s3_triton: tuple[str, str, str], tiny_onnx: dict[int, Path]) -> None:
    endpoint, _, triton_url = s3_triton
    for seed in (0, 1):
        result = cli.invoke(app, ["publish", str(tiny_onnx[seed]), "--style", "s3style"])
        assert result.exit_code == 0, result.output
        assert f"version {seed + 1} is live" in result.output
    store = S3Store("models", "repo", endpoint, s3_client(endpoint, **LOCAL_CREDENTIALS))
    assert store.versions("s3style") == [1, 2]
    assert list(parse_config(store.read("s3style/config.pbtxt").decode()).version_policy.specific.versions) == [1, 2]
    assert store.read("s3style/publish.lock") is None

    listing = cli.invoke(app, ["models", "list"])
    assert listing.exit_code == 0, listing.output
    assert "s3style" in listing.output and "READY" in listing.output and "fp32" in listing.output

    retire_live = cli.invoke(app, ["models", "retire", "s3style", "2"])
    assert retire_live.exit_code == 1 and "is live" in retire_live.output
    assert cli.invoke(app, ["models", "rollback", "s3style"]).exit_code == 0
    control = TritonControl(triton_url)
    from deploy.artifact import golden_images

    assert control.infer("s3style", golden_images(4)[:1])[1] == 1
    control.close()
    retired = cli.invoke(app, ["models", "retire", "s3style", "2"])
    assert retired.exit_code == 0, retired.output
    assert store.versions("s3style") == [1]

    unknown = cli.invoke(app, ["models", "rollback", "no-such-style"])
    assert unknown.exit_code == 1 and "unknown style 'no-such-style'" in unknown.output


def test_missing_bucket_and_unreachable_triton_are_clear_errors(cli: CliRunner, tiny_onnx: dict[int, Path]) -> None:
    missing = cli.invoke(app, ["publish", str(tiny_onnx[0]), "--style", "x", "--repository", "s3://no-such-bucket/repo"])
    assert missing.exit_code == 1
    assert "bucket 'no-such-bucket' does not exist" in missing.output
    down = cli.invoke(app, ["publish", str(tiny_onnx[0]), "--style", "x", "--triton", f"http://127.0.0.1:{free_port()}"])
    assert down.exit_code == 1
    assert "unreachable" in down.output


def test_s3_lock_is_exclusive(s3_triton: tuple[str, str, str]) -> None:
    endpoint, _, _ = s3_triton
    store = S3Store("models", "repo", endpoint, s3_client(endpoint, **LOCAL_CREDENTIALS))
    other = S3Store("models", "repo", endpoint, s3_client(endpoint, **LOCAL_CREDENTIALS))
    from deploy.model_store import StoreError

    with store.lock("locked"):
        with pytest.raises(StoreError, match="another publish"):
            with other.lock("locked", timeout=0.5):
                pass
    with other.lock("locked", timeout=0.5):
        pass

"""Publishing to a local repository against the real bundled Triton."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from deploy.artifact import golden_images, prepare_artifact
from deploy.model_store import LocalStore
from deploy.publish import PublishError, list_models, publish, retire, rollback
from deploy.repository import parse_config
from deploy.triton_control import TritonControl

pytestmark = pytest.mark.integration


class Traffic:
    """A background thread looping unpinned infer calls, counting failures and versions seen."""

    def __init__(self, url: str, style: str, max_seconds: float = 120.0) -> None:
        self.control = TritonControl(url)
        self.style = style
        self.images = golden_images(4)[:1]
        self.max_seconds = max_seconds
        self.requests = 0
        self.failures: list[str] = []
        self.versions: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self.stop.is_set() and time.monotonic() < deadline:
            self.requests += 1
            try:
                _, version = self.control.infer(self.style, self.images)
                self.versions.append(version)
            except Exception as error:  # every failure is what the test counts
                self.failures.append(str(error))

    def __enter__(self) -> Traffic:
        self.thread.start()
        while self.requests < 5:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.3)
        self.stop.set()
        self.thread.join()
        self.control.close()


def test_publish_load_smoke_and_zero_downtime(local_triton: tuple[Path, TritonControl], tiny_onnx: dict[int, Path], tmp_path: Path) -> None:
    repository, triton = local_triton
    store = LocalStore(repository)
    first = publish(prepare_artifact(tiny_onnx[0], "zero", None, tmp_path), "zero", store, triton)
    assert (first.version, first.previous) == (1, None)
    with Traffic(triton.url, "zero") as traffic:
        second = publish(prepare_artifact(tiny_onnx[1], "zero", None, tmp_path), "zero", store, triton)
        time.sleep(0.5)
    print(f"zero-downtime publish: {traffic.requests} requests, {len(traffic.failures)} failed")
    assert traffic.failures == []
    assert traffic.requests > 20
    assert second.version == 2 and second.previous == 1
    assert traffic.versions[0] == 1 and traffic.versions[-1] == 2
    config = parse_config((repository / "zero" / "config.pbtxt").read_text())
    assert list(config.version_policy.specific.versions) == [1, 2]
    assert triton.is_ready("zero", 1) and triton.is_ready("zero", 2)


def test_broken_version_rolls_back_while_old_keeps_serving(local_triton: tuple[Path, TritonControl], tiny_onnx: dict[int, Path], tmp_path: Path) -> None:
    repository, triton = local_triton
    store = LocalStore(repository)
    publish(prepare_artifact(tiny_onnx[0], "broken", None, tmp_path), "broken", store, triton)

    def corrupt_after_staging(prefix: str) -> None:
        # Staging passes; the file Triton loads for the live style is then truncated.
        if prefix.startswith("broken/"):
            model = repository / prefix / "model.onnx"
            model.write_bytes(model.read_bytes()[:200])

    def swap_weights(prefix: str) -> None:
        # A valid model that is not what was gated: loads fine, must fail the smoke test.
        (repository / prefix / "model.onnx").write_bytes(tiny_onnx[1].read_bytes())

    with Traffic(triton.url, "broken") as traffic:
        with pytest.raises(PublishError, match="rolled back"):
            publish(prepare_artifact(tiny_onnx[0], "broken", None, tmp_path), "broken", store, triton, after_write=corrupt_after_staging)
        with pytest.raises(PublishError, match="smoke test failed"):
            publish(prepare_artifact(tiny_onnx[0], "broken", None, tmp_path), "broken", store, triton, after_write=swap_weights)
    print(f"broken publishes: {traffic.requests} requests, {len(traffic.failures)} failed")
    assert traffic.failures == []
    assert set(traffic.versions) == {1}
    assert store.versions("broken") == [1]
    assert triton.is_ready("broken", 1) and not triton.is_ready("broken", 2)
    assert "_staging.broken" not in store.styles()
    assert list(parse_config((repository / "broken" / "config.pbtxt").read_text()).version_policy.specific.versions) == [1]


def test_list_rollback_retire_and_errors(local_triton: tuple[Path, TritonControl], tiny_onnx: dict[int, Path], tmp_path: Path) -> None:
    repository, triton = local_triton
    store = LocalStore(repository)
    for seed in (0, 1, 0):
        publish(prepare_artifact(tiny_onnx[seed], "cycle", None, tmp_path), "cycle", store, triton)
    rows = {row.version: row for row in list_models(store, triton)["cycle"]}
    assert [v for v, row in rows.items() if row.live] == [3]
    assert rows[3].loaded == "READY" and rows[2].loaded == "READY" and rows[1].loaded != "READY"
    assert rows[3].precision == "fp32" and rows[3].gates["contract"] == "pass"

    with pytest.raises(PublishError, match="is live"):
        retire("cycle", 3, store, triton)
    assert rollback("cycle", store, triton) == 2
    _, version = triton.infer("cycle", golden_images(4)[:1])
    assert version == 2
    retire("cycle", 3, store, triton)
    assert store.versions("cycle") == [1, 2]
    retire("cycle", 1, store, triton)
    assert store.versions("cycle") == [2]
    with pytest.raises(PublishError, match="no version older"):
        rollback("cycle", store, triton)
    with pytest.raises(PublishError, match="unknown style 'nope'"):
        rollback("nope", store, triton)


def test_concurrent_publishes_of_one_style_serialize(local_triton: tuple[Path, TritonControl], tiny_onnx: dict[int, Path], tmp_path: Path) -> None:
    repository, triton = local_triton
    store = LocalStore(repository)
    artifacts = [prepare_artifact(tiny_onnx[seed], "race", None, tmp_path) for seed in (0, 1, 0)]
    results, errors = [], []

    def run(artifact) -> None:  # noqa: ANN001
        try:
            results.append(publish(artifact, "race", store, TritonControl(triton.url)))
        except Exception as error:  # collected for the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(a,)) for a in artifacts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(r.version for r in results) == [1, 2, 3]
    assert store.versions("race") == [1, 2, 3]
    assert list(parse_config((repository / "race" / "config.pbtxt").read_text()).version_policy.specific.versions) == [2, 3]
    _, version = triton.infer("race", golden_images(4)[:1])
    assert version == 3


def test_unreachable_triton_is_a_clear_error_and_writes_nothing(tiny_onnx: dict[int, Path], tmp_path: Path) -> None:
    from tests.conftest import free_port

    store = LocalStore(tmp_path / "repo")
    with pytest.raises(Exception, match="unreachable"):
        publish(prepare_artifact(tiny_onnx[0], "x", None, tmp_path), "x", store, TritonControl(f"http://127.0.0.1:{free_port()}", timeout=3))
    assert store.styles() == []


def test_served_output_matches_reference(local_triton: tuple[Path, TritonControl], tiny_onnx: dict[int, Path], tmp_path: Path) -> None:
    repository, triton = local_triton
    result = publish(prepare_artifact(tiny_onnx[1], "match", None, tmp_path), "match", LocalStore(repository), triton)
    assert result.smoke.max_difference <= result.smoke.tolerance
    images = golden_images(4)
    served, _ = triton.infer("match", images, result.version)
    assert served.shape == images.shape and served.dtype == np.uint8

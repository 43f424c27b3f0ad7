"""``pastiche engines build|verify``: which plans are built, kept or refused, and what is written.

trtexec and nvidia-smi are stand-ins (tests/export/gpu_stand_ins.py): no GPU or TensorRT exists
here. The repositories are real directories and, once, a real S3 endpoint (moto's server).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploy.model_store import LocalStore
from deploy.repository import ServingPolicy, Target, build_config, parse_config, render_config
from export.engines import parse_trtexec_version, read_source_style
from export.tensorrt import TRITON_IMAGE, EngineError, EngineManifest, TensorRTVersion, pinned_tag, tensorrt_unavailable_reason
from pastiche.cli import app
from pastiche.contract import StyleMetadata
from tests.export import gpu_stand_ins

REPO = Path(__file__).resolve().parents[2]
CANDY = StyleMetadata(title="Candy", description="", architecture="resnet", precision="fp16", size_multiple=4, max_side=1024)
MOSAIC = StyleMetadata(title="Mosaic", description="", architecture="unet_256", size_multiple=256, preferred_side=512, max_side=768)
runner = CliRunner()


def publish_onnx(root: Path, style: str, metadata: StyleMetadata, versions: dict[int, bytes], served: tuple[int, ...]) -> None:
    """An ONNX repository as `pastiche publish --target onnx` leaves it."""
    policy = ServingPolicy(max_batch_size=16, preferred_batch_sizes=(8, 16))
    config = build_config(style, metadata, Target.ONNX, policy, served)
    (root / style).mkdir(parents=True, exist_ok=True)
    (root / style / "config.pbtxt").write_text(render_config(config))
    for version, data in versions.items():
        (root / style / str(version)).mkdir(exist_ok=True)
        (root / style / str(version) / "model.onnx").write_bytes(data)


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    log = gpu_stand_ins.install(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    for name in ("STANDIN_TRT", "STANDIN_GPU", "STANDIN_TRT_FAIL"):
        monkeypatch.delenv(name, raising=False)
    source, target = tmp_path / "onnx", tmp_path / "gpu" / "26.07-py3"
    publish_onnx(source, "candy", CANDY, {1: b"candy-1", 2: b"candy-2"}, served=(1, 2))
    publish_onnx(source, "mosaic", MOSAIC, {3: b"mosaic-3"}, served=(3,))
    target.mkdir(parents=True)
    return {"source": source, "target": target, "log": log}


def build(env: dict[str, Path], *extra: str):  # noqa: ANN201 - click Result
    args = ["engines", "build", "--repository", str(env["target"]), "--source", str(env["source"]), "--trtexec", "trtexec"]
    return runner.invoke(app, [*args, *extra])


def verify(env: dict[str, Path], *extra: str):  # noqa: ANN201
    return runner.invoke(app, ["engines", "verify", "--repository", str(env["target"]), *extra])


def test_build_writes_plans_manifests_and_tensorrt_configs(env):
    result = build(env)
    assert result.exit_code == 0, result.output
    candy = env["target"] / "candy"
    for version, data in ((1, b"candy-1"), (2, b"candy-2")):
        plan = candy / str(version) / "model_sm90.plan"
        assert plan.read_bytes().startswith(b"plan 100500")
        manifest = EngineManifest.model_validate_json((candy / str(version) / "model_sm90.plan.json").read_text())
        assert (manifest.tensorrt_version, manifest.gpu_name, manifest.compute_capability) == ("10.5.0", "NVIDIA H100 80GB HBM3", "9.0")
        assert manifest.precision == "fp16" and manifest.builder == "trtexec" and manifest.typing == "strong"
        assert manifest.source_onnx_sha256 == hashlib.sha256(data).hexdigest()
        assert manifest.engine_sha256 == hashlib.sha256(plan.read_bytes()).hexdigest()
    config = parse_config((candy / "config.pbtxt").read_text())
    assert config.platform == "tensorrt_plan"
    assert dict(config.cc_model_filenames) == {"9.0": "model_sm90.plan"}
    assert list(config.version_policy.specific.versions) == [1, 2]
    assert config.max_batch_size == 16 and list(config.dynamic_batching.preferred_batch_size) == [8, 16]
    assert config.parameters["title"].string_value == "Candy"
    # Profiles follow each style's metadata and the ONNX config's batch limit.
    calls = gpu_stand_ins.calls(env["log"])
    assert len(calls) == 3
    mosaic = [call for call in calls if "--maxShapes=image:16x768x768x3" in call]
    assert len(mosaic) == 1 and "--minShapes=image:1x256x256x3" in mosaic[0] and "--stronglyTyped" in mosaic[0]
    assert sum("--maxShapes=image:16x1024x1024x3" in call for call in calls) == 2


def test_second_build_keeps_matching_plans_and_verify_passes(env):
    assert build(env).exit_code == 0
    before = {p: p.read_bytes() for p in env["target"].rglob("*.plan")}
    again = build(env)
    assert again.exit_code == 0, again.output
    assert len(gpu_stand_ins.calls(env["log"])) == 3
    assert "0 built, 3 matching" in again.output
    assert {p: p.read_bytes() for p in env["target"].rglob("*.plan")} == before
    checked = verify(env)
    assert checked.exit_code == 0, checked.output
    assert "candy/2" in checked.output


def test_model_option_limits_the_build_and_unknown_models_are_refused(env):
    result = build(env, "--model", "mosaic")
    assert result.exit_code == 0, result.output
    assert not (env["target"] / "candy").exists() and (env["target"] / "mosaic" / "3" / "model_sm90.plan").is_file()
    unknown = build(env, "--model", "starry")
    assert unknown.exit_code == 2
    assert "not in the ONNX repository: starry" in unknown.output


def test_another_gpu_type_adds_its_plans_beside_the_first(env, monkeypatch):
    assert build(env).exit_code == 0
    monkeypatch.setenv("STANDIN_GPU", "NVIDIA L4, 8.9")
    missing = verify(env)
    assert missing.exit_code == 1
    assert "no plan for compute capability 8.9" in missing.output
    assert build(env).exit_code == 0
    assert (env["target"] / "candy" / "1" / "model_sm89.plan").is_file()
    config = parse_config((env["target"] / "candy" / "config.pbtxt").read_text())
    assert dict(config.cc_model_filenames) == {"8.9": "model_sm89.plan", "9.0": "model_sm90.plan"}
    assert verify(env).exit_code == 0
    monkeypatch.setenv("STANDIN_GPU", "NVIDIA H100 80GB HBM3, 9.0")
    assert verify(env).exit_code == 0


def test_plans_of_another_tensorrt_are_refused_not_replaced(env, monkeypatch):
    assert build(env).exit_code == 0
    plan = env["target"] / "candy" / "1" / "model_sm90.plan"
    before = plan.read_bytes()
    monkeypatch.setenv("STANDIN_TRT", "100600")
    result = build(env)
    assert result.exit_code == 1
    assert "3 refused" in result.output
    assert "candy/1 (model_sm90.plan): built with TensorRT 10.5.0, target runs 10.6.0" in result.output
    assert plan.read_bytes() == before
    checked = verify(env)
    assert checked.exit_code == 1 and "built with TensorRT 10.5.0" in checked.output
    # --tensorrt-version stands in for asking trtexec.
    assert verify(env, "--tensorrt-version", "10.5.0").exit_code == 0


def test_changed_source_and_tampered_plans_are_refused(env):
    assert build(env).exit_code == 0
    (env["source"] / "candy" / "2" / "model.onnx").write_bytes(b"candy-2 re-exported")
    changed = build(env)
    assert changed.exit_code == 1
    assert "candy/2 (model_sm90.plan): built from a different ONNX file" in changed.output
    (env["target"] / "mosaic" / "3" / "model_sm90.plan").write_bytes(b"corrupt")
    tampered = verify(env)
    assert tampered.exit_code == 1
    assert "mosaic/3: the engine file is not the one the manifest describes" in tampered.output
    (env["target"] / "mosaic" / "3" / "model_sm90.plan.json").write_text("{}")
    assert "unreadable manifest mosaic/3/model_sm90.plan.json" in verify(env).output


def test_failed_and_wrong_version_builds_are_reported(env, monkeypatch):
    monkeypatch.setenv("STANDIN_TRT_FAIL", "1")
    failed = build(env, "--model", "mosaic")
    assert failed.exit_code == 1
    assert "mosaic/3: build failed: trtexec failed (exit 1)" in failed.output and "unsupported node" in failed.output
    assert not (env["target"] / "mosaic" / "config.pbtxt").exists()
    monkeypatch.delenv("STANDIN_TRT_FAIL")
    claimed = build(env, "--model", "mosaic", "--tensorrt-version", "10.6.0")
    assert claimed.exit_code == 1
    assert "trtexec ran TensorRT 10.5.0, but TensorRT 10.6.0 was expected" in claimed.output
    assert not list(env["target"].rglob("*.plan.json"))


def test_without_gpu_or_trtexec_or_repository_it_exits_2(env, monkeypatch, tmp_path):
    assert build(env, "--tensorrt-version", "9.2.0").exit_code == 2  # TensorRT 9 is not supported
    missing_repo = runner.invoke(app, ["engines", "verify", "--repository", str(tmp_path / "nowhere"), "--tensorrt-version", "10.5.0"])
    assert missing_repo.exit_code == 2 and "is not a directory" in missing_repo.output
    no_trtexec = runner.invoke(app, ["engines", "build", "--repository", str(env["target"]), "--source", str(env["source"]), "--trtexec", str(tmp_path / "none")])
    assert no_trtexec.exit_code == 2 and "trtexec not found" in no_trtexec.output
    (tmp_path / "bin" / "nvidia-smi").unlink()
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}/usr/bin:/bin")
    no_gpu = build(env)
    assert no_gpu.exit_code == 2 and "no NVIDIA GPU is visible" in no_gpu.output


def test_empty_engine_repository_fails_verify(env):
    result = verify(env)
    assert result.exit_code == 1 and "holds no model" in result.output


def test_metadata_falls_back_to_the_onnx_metadata_props(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["stylized"])], "g",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", "H", "W", 3])],
        [helper.make_tensor_value_info("stylized", TensorProto.UINT8, ["N", "H", "W", 3])],
    )
    model = helper.make_model(graph)
    onnx.helper.set_model_props(model, MOSAIC.to_onnx_metadata())
    publish_onnx(tmp_path, "mosaic", MOSAIC, {1: model.SerializeToString()}, served=())
    config = parse_config((tmp_path / "mosaic" / "config.pbtxt").read_text())
    config.ClearField("parameters")
    (tmp_path / "mosaic" / "config.pbtxt").write_text(render_config(config))
    style = read_source_style(LocalStore(tmp_path), "mosaic")
    assert style.metadata == MOSAIC and style.versions == (1,) and not style.pinned
    (tmp_path / "mosaic" / "1" / "model.onnx").write_bytes(helper.make_model(graph).SerializeToString())
    with pytest.raises(EngineError, match="no pastiche.\\* metadata"):
        read_source_style(LocalStore(tmp_path), "mosaic")


@pytest.mark.parametrize(
    ("output", "version"),
    [
        ("&&&& RUNNING TensorRT.trtexec [TensorRT v100500] # trtexec --version", "10.5.0"),
        ("&&&& RUNNING TensorRT.trtexec [TensorRT v110001]", "11.0.1"),
        ("TensorRT version: 10.13.3.9", "10.13.3"),
    ],
)
def test_trtexec_version_parsing(output, version):
    assert parse_trtexec_version(output) == TensorRTVersion.parse(version)


def test_trtexec_without_a_version_is_an_error():
    with pytest.raises(EngineError, match="no TensorRT version"):
        parse_trtexec_version("usage: trtexec [options]")


def test_triton_image_tag_comes_from_versions_env():
    assert TRITON_IMAGE == f"nvcr.io/nvidia/tritonserver:{pinned_tag('TRITON_TAG')}"
    env_text = (REPO / "deploy" / "versions" / "versions.env").read_text()
    assert f"TRITON_TAG={TRITON_IMAGE.rsplit(':', 1)[1]}" in env_text.splitlines()
    with pytest.raises(KeyError):
        pinned_tag("NOT_PINNED")


def test_cli_imports_no_serving_or_training_stack():
    """The Triton image installs only triton-engines-requirements.txt: `pastiche` must load without the rest."""
    heavy = ["torch", "onnxruntime", "fastapi", "locust", "uvicorn", "gevent", "geventhttpclient"]
    code = f"import pastiche.cli, sys; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO, check=True)
    assert result.stdout.strip() == "[]"
    help_text = subprocess.run(
        [str(Path(sys.executable).with_name("pastiche")), "engines", "--help"], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert help_text.returncode == 0, help_text.stderr
    assert "build" in help_text.stdout and "verify" in help_text.stdout


def test_build_and_verify_against_s3(env, monkeypatch):
    from moto.server import ThreadedMotoServer

    from pastiche.s3 import s3_client

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        monkeypatch.setenv("PASTICHE_S3_ENDPOINT_URL", endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        client = s3_client(endpoint)
        client.create_bucket(Bucket="pastiche")
        for path in env["source"].rglob("*"):
            if path.is_file():
                client.put_object(Bucket="pastiche", Key=f"models/onnx/{path.relative_to(env['source'])}", Body=path.read_bytes())
        args = ["--repository", "s3://pastiche/models/gpu/26.07-py3"]
        result = runner.invoke(app, ["engines", "build", *args, "--source", "s3://pastiche/models/onnx", "--trtexec", "trtexec"])
        assert result.exit_code == 0, result.output
        keys = {o["Key"] for o in client.list_objects_v2(Bucket="pastiche", Prefix="models/gpu/")["Contents"]}
        assert {"models/gpu/26.07-py3/candy/config.pbtxt", "models/gpu/26.07-py3/candy/2/model_sm90.plan",
                "models/gpu/26.07-py3/mosaic/3/model_sm90.plan.json"} <= keys
        assert not any(key.endswith("publish.lock") for key in keys)
        assert runner.invoke(app, ["engines", "verify", *args]).exit_code == 0
        missing = runner.invoke(app, ["engines", "verify", "--repository", "s3://absent-bucket/gpu/26.07-py3"])
        assert missing.exit_code == 2 and "does not exist" in missing.output
    finally:
        server.stop()


@pytest.mark.skipif(tensorrt_unavailable_reason() is not None, reason=f"needs TensorRT and a GPU: {tensorrt_unavailable_reason()}")
def test_real_trtexec_build_on_a_gpu(tmp_path, tiny_resnet_onnx):
    """With the Triton image's trtexec and a GPU: a real plan, a manifest that verify accepts."""
    publish_onnx(tmp_path / "onnx", "tiny", CANDY, {1: tiny_resnet_onnx.read_bytes()}, served=(1,))
    target = tmp_path / "gpu"
    target.mkdir()
    result = runner.invoke(app, ["engines", "build", "--repository", str(target), "--source", str(tmp_path / "onnx")])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["engines", "verify", "--repository", str(target)]).exit_code == 0
    assert json.loads(next(target.rglob("*.plan.json")).read_text())["builder"] == "trtexec"

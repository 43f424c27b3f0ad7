"""TensorRT planning: optimization profiles, trtexec command lines, build scripts and engine manifests.

The engine build itself needs an NVIDIA GPU; it runs only where one (and ``tensorrt``) is present.
The build script is exercised with stand-ins for ``trtexec`` and ``nvidia-smi`` that print what the
real tools print, so the script's own logic (version check, manifest writing) is tested here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from export.tensorrt import (
    EngineError,
    EngineManifest,
    EngineMismatch,
    EngineRequest,
    EngineTarget,
    OptimizationProfile,
    ServingLimits,
    TensorRTVersion,
    build_engine,
    build_script,
    check_manifest,
    derive_profile,
    manifest_path,
    require_compatible,
    sha256_of,
    tensorrt_unavailable_reason,
    trtexec_command,
)
from pastiche.contract import StyleMetadata

RESNET = StyleMetadata(title="t", description="", architecture="resnet", size_multiple=4, preferred_side=512)
UNET = StyleMetadata(
    title="t", description="", architecture="unet_256", size_multiple=256, preferred_side=256, max_side=1024
)
TRT10 = TensorRTVersion.parse("10.5.0")
TRT11 = TensorRTVersion.parse("11.0.0")


def test_profile_follows_metadata_and_serving_limits() -> None:
    profile = derive_profile(RESNET, ServingLimits(max_batch_size=8))
    assert profile.min == (1, 64, 64, 3)
    assert profile.opt == (4, 512, 512, 3)
    assert profile.max == (8, 1024, 1024, 3)


def test_profile_sides_respect_the_size_multiple() -> None:
    profile = derive_profile(UNET, ServingLimits(max_batch_size=4, opt_batch=2))
    assert profile.min == (1, 256, 256, 3) and profile.opt == (2, 256, 256, 3) and profile.max == (4, 1024, 1024, 3)
    odd = derive_profile(RESNET, ServingLimits(min_side=101, max_side=703))
    assert odd.min[1] == 104 and odd.max[1] == 700


def test_opt_side_is_clamped_into_the_range() -> None:
    assert derive_profile(RESNET, ServingLimits(max_side=256)).opt[1] == 256


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (ServingLimits(min_side=600, max_side=500), "no valid side"),
        (ServingLimits(max_batch_size=4, opt_batch=5), "outside 1..4"),
        (ServingLimits(max_batch_size=0), "max_batch_size must be >= 1"),
    ],
)
def test_impossible_limits_are_refused(limits: ServingLimits, message: str) -> None:
    with pytest.raises(EngineError, match=message):
        derive_profile(RESNET, limits)


def test_limits_come_from_a_triton_config() -> None:
    pbtxt = """
    name: "candy"
    backend: "onnxruntime"
    max_batch_size: 16
    dynamic_batching { preferred_batch_size: [ 4, 8 ] max_queue_delay_microseconds: 2000 }
    """
    assert ServingLimits.from_triton_config(pbtxt) == ServingLimits(max_batch_size=16, opt_batch=8)
    assert ServingLimits.from_triton_config(pbtxt, opt_batch=2).opt_batch == 2
    assert derive_profile(RESNET, ServingLimits.from_triton_config(pbtxt)).opt[0] == 8


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10.5.0", (10, 5, 0)), ("10.5.0.18", (10, 5, 0)), ("100500", (10, 5, 0)), ("v110203", (11, 2, 3))],
)
def test_versions_parse(text: str, expected: tuple[int, int, int]) -> None:
    version = TensorRTVersion.parse(text)
    assert (version.major, version.minor, version.patch) == expected


def test_bad_version_is_refused() -> None:
    with pytest.raises(EngineError, match="not a TensorRT version"):
        TensorRTVersion.parse("ten")


def _request(precision: str = "fp16", onnx: str = "model.fp16.onnx") -> EngineRequest:
    return EngineRequest(
        onnx=Path(onnx),
        engine=Path(f"engines/model.{precision}.plan"),
        precision=precision,
        profile=derive_profile(RESNET),
        workspace_mib=2048,
        timing_cache=Path("engines/timing.cache"),
    )


def test_trtexec_command_for_tensorrt_10_strongly_typed() -> None:
    assert " ".join(trtexec_command(_request(), TRT10)) == (
        "trtexec --onnx=model.fp16.onnx --saveEngine=engines/model.fp16.plan "
        "--minShapes=image:1x64x64x3 --optShapes=image:4x512x512x3 --maxShapes=image:8x1024x1024x3 "
        "--memPoolSize=workspace:2048M --timingCacheFile=engines/timing.cache --stronglyTyped --skipInference"
    )


def test_trtexec_command_with_tensorrt_10_builder_flags() -> None:
    fp16 = trtexec_command(_request("fp16"), TRT10, "flags")
    int8 = trtexec_command(_request("int8", "model.int8.onnx"), TRT10, "flags")
    fp32 = trtexec_command(_request("fp32", "model.onnx"), TRT10, "flags")
    assert "--fp16" in fp16 and "--stronglyTyped" not in fp16
    assert "--int8" in int8 and "--fp16" not in int8
    assert not {"--fp16", "--int8", "--stronglyTyped"} & set(fp32)


def test_tensorrt_11_is_always_strongly_typed() -> None:
    command = trtexec_command(_request(), TRT11)
    assert not {"--fp16", "--int8", "--stronglyTyped"} & set(command)
    with pytest.raises(EngineError, match="TensorRT 11 removed the precision builder flags"):
        trtexec_command(_request(), TRT11, "flags")
    with pytest.raises(EngineError, match="not supported"):
        trtexec_command(_request(), TensorRTVersion.parse("8.6.1"))


def _manifest(**overrides: object) -> EngineManifest:
    values: dict[str, object] = {
        "tensorrt_version": "10.5.0",
        "gpu_name": "NVIDIA L4",
        "compute_capability": "8.9",
        "precision": "fp16",
        "typing": "strong",
        "profiles": [derive_profile(RESNET)],
        "source_onnx": "model.fp16.onnx",
        "source_onnx_sha256": "a" * 64,
        "engine_sha256": "b" * 64,
        "workspace_mib": 4096,
        "builder": "trtexec",
        "built_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    return EngineManifest(**(values | overrides))


L4 = EngineTarget(tensorrt_version="10.5.0.18", gpu_name="NVIDIA L4", compute_capability="8.9")


def test_matching_manifest_passes() -> None:
    assert check_manifest(_manifest(), L4, precision="fp16", onnx_sha256="a" * 64, engine_sha256="b" * 64) == []


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (L4.model_copy(update={"tensorrt_version": "10.3.0"}), "built with TensorRT 10.5.0, target runs 10.3.0"),
        (L4.model_copy(update={"compute_capability": "9.0"}), "compute capability 8.9, target GPU is 9.0"),
        (L4.model_copy(update={"gpu_name": "NVIDIA A10G"}), "tuned on NVIDIA L4, target GPU is NVIDIA A10G"),
    ],
)
def test_mismatched_target_is_reported(target: EngineTarget, expected: str) -> None:
    assert any(expected in problem for problem in check_manifest(_manifest(), target))


def test_wrong_precision_or_sources_are_reported() -> None:
    problems = check_manifest(_manifest(), L4, precision="int8", onnx_sha256="c" * 64, engine_sha256="d" * 64)
    assert len(problems) == 3


def test_require_compatible_reads_the_manifest_next_to_the_engine(tmp_path: Path) -> None:
    engine = tmp_path / "model.fp16.plan"
    engine.write_bytes(b"serialized engine")
    with pytest.raises(EngineMismatch, match="no manifest"):
        require_compatible(engine, L4)
    manifest_path(engine).write_text(_manifest(engine_sha256=sha256_of(engine)).model_dump_json())
    assert require_compatible(engine, L4, precision="fp16").gpu_name == "NVIDIA L4"
    engine.write_bytes(b"another engine")
    with pytest.raises(EngineMismatch, match="not the one the manifest describes"):
        require_compatible(engine, L4)


FAKE_TRTEXEC = """#!/usr/bin/env bash
echo "&&&& RUNNING TensorRT.trtexec [TensorRT v{number}] # trtexec $*"
for arg in "$@"; do
  case "$arg" in --saveEngine=*) echo "engine built from $*" > "${{arg#--saveEngine=}}" ;; esac
done
echo "&&&& PASSED TensorRT.trtexec [TensorRT v{number}]"
"""
FAKE_NVIDIA_SMI = """#!/usr/bin/env bash
echo "NVIDIA L4, 8.9"
"""


def _fake_tools(directory: Path, number: str) -> dict[str, str]:
    directory.mkdir()
    (directory / "trtexec").write_text(FAKE_TRTEXEC.format(number=number))
    (directory / "nvidia-smi").write_text(FAKE_NVIDIA_SMI)
    for tool in directory.iterdir():
        tool.chmod(0o755)
    return os.environ | {"PATH": f"{directory}:{os.environ['PATH']}", "TRTEXEC": str(directory / "trtexec")}


def _export_dir(tmp_path: Path) -> tuple[Path, list[EngineRequest]]:
    root = tmp_path / "export"
    (root / "engines").mkdir(parents=True)
    requests = []
    for precision, name in (("fp32", "model.onnx"), ("int8", "model.int8.onnx")):
        (root / name).write_bytes(f"{precision} onnx".encode())
        requests.append(_request(precision, name))
    (root / "engines" / "build_engines.sh").write_text(build_script(requests, root, TRT10))
    return root, requests


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_build_script_is_valid_bash_and_writes_checked_manifests(tmp_path: Path) -> None:
    root, requests = _export_dir(tmp_path)
    script = root / "engines" / "build_engines.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    env = _fake_tools(tmp_path / "bin", "100500")
    subprocess.run(["bash", str(script)], check=True, env=env, capture_output=True, cwd=tmp_path)
    for request in requests:
        engine = root / request.engine
        manifest = require_compatible(engine, L4, precision=request.precision, onnx=root / request.onnx)
        assert manifest.builder == "trtexec" and manifest.tensorrt_version == "10.5.0"
        assert manifest.profiles == [request.profile]
        assert "--stronglyTyped" in engine.read_text()
        with pytest.raises(EngineMismatch, match="compute capability"):
            require_compatible(engine, L4.model_copy(update={"compute_capability": "9.0"}))


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_build_script_refuses_another_tensorrt(tmp_path: Path) -> None:
    root, _ = _export_dir(tmp_path)
    env = _fake_tools(tmp_path / "bin", "100300")
    result = subprocess.run(
        ["bash", str(root / "engines" / "build_engines.sh")], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "TensorRT 10.3.0 in this container, but the engines were planned for 10.5.0" in result.stderr
    assert not manifest_path(root / "engines" / "model.fp32.plan").exists()


def test_profile_shapes_for_trtexec() -> None:
    profile = OptimizationProfile(min=(1, 8, 8, 3), opt=(2, 16, 16, 3), max=(4, 32, 32, 3))
    assert profile.trtexec_shapes() == [
        "--minShapes=image:1x8x8x3",
        "--optShapes=image:2x16x16x3",
        "--maxShapes=image:4x32x32x3",
    ]


@pytest.mark.gpu
@pytest.mark.skipif(tensorrt_unavailable_reason() is not None, reason=str(tensorrt_unavailable_reason()))
def test_python_api_builds_an_engine_with_a_matching_manifest(tiny_resnet_onnx: Path, tmp_path: Path) -> None:
    request = EngineRequest(
        onnx=tiny_resnet_onnx,
        engine=tmp_path / "model.fp32.plan",
        precision="fp32",
        profile=derive_profile(RESNET, ServingLimits(max_batch_size=2, max_side=512)),
        workspace_mib=1024,
        timing_cache=tmp_path / "timing.cache",
    )
    manifest = build_engine(request)
    assert request.engine.stat().st_size > 0 and request.timing_cache.is_file()
    from export.tensorrt import local_target

    assert require_compatible(request.engine, local_target(), precision="fp32", onnx=tiny_resnet_onnx) == manifest

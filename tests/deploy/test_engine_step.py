"""The engine step script: what it hands to `pastiche engines`, and what it refuses.

TensorRT and GPUs are absent here, so `pastiche`, `trtexec` and `nvidia-smi` are stand-ins on
PATH that record how they were called; the script's own decisions are what is under test. The
last test hands the script the real `pastiche engines` (with the trtexec/nvidia-smi stand-ins of
tests/export/gpu_stand_ins.py). The build itself (TensorRT on a GPU) cannot run on these machines.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.rendering import DEPLOY

SCRIPT = DEPLOY / "docker" / "pastiche-engines.sh"
TAG = "26.07-py3"


@pytest.fixture()
def stand_ins(tmp_path: Path) -> Path:
    """A bin directory with recording stand-ins for pastiche, trtexec and nvidia-smi."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pastiche").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{tmp_path}/pastiche.args"\n')
    (bin_dir / "trtexec").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "nvidia-smi").write_text('#!/bin/sh\necho "NVIDIA H100 80GB HBM3, 9.0"\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return bin_dir


def run(bin_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash")
    assert bash, "bash is needed to run the engine step"
    base = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "PASTICHE_IMAGE_TRITON_TAG": TAG,
        "PASTICHE_ENGINE_REPOSITORY": f"s3://pastiche/models/gpu/{TAG}",
        "PASTICHE_ONNX_REPOSITORY": "s3://pastiche/models/onnx",
    }
    merged = {k: v for k, v in (base | env).items() if v != ""}
    return subprocess.run([bash, str(SCRIPT), *args], env=merged, capture_output=True, text=True, timeout=30)


def recorded(bin_dir: Path) -> list[str]:
    return (bin_dir.parent / "pastiche.args").read_text().splitlines()


def test_build_hands_source_target_trtexec_and_models_to_the_cli(stand_ins):
    result = run(
        stand_ins, "build",
        PASTICHE_ENGINE_MODELS="candy, mosaic,,",
        PASTICHE_ENGINE_TIMING_CACHE="/tmp/timing.cache",
        PASTICHE_ENGINE_REPOSITORY=f"s3://pastiche/models/gpu/{TAG}/",
    )
    assert result.returncode == 0, result.stderr
    assert recorded(stand_ins) == [
        "engines", "build", "--repository", f"s3://pastiche/models/gpu/{TAG}",
        "--source", "s3://pastiche/models/onnx", "--trtexec", str(stand_ins / "trtexec"),
        "--timing-cache", "/tmp/timing.cache", "--model", "candy", "--model", "mosaic",
    ]
    assert "NVIDIA H100 80GB HBM3, 9.0" in result.stderr


def test_build_is_the_default_and_verify_needs_no_source(stand_ins):
    assert run(stand_ins).returncode == 0
    assert recorded(stand_ins)[:2] == ["engines", "build"]
    result = run(stand_ins, "verify", PASTICHE_ONNX_REPOSITORY="")
    assert result.returncode == 0, result.stderr
    assert recorded(stand_ins) == ["engines", "verify", "--repository", f"s3://pastiche/models/gpu/{TAG}"]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("rebuild",), {}, "unknown mode 'rebuild'"),
        (("build", "extra"), {}, "unexpected arguments"),
        ((), {"PASTICHE_IMAGE_TRITON_TAG": ""}, "inside the Pastiche Triton image"),
        ((), {"PASTICHE_ENGINE_REPOSITORY": ""}, "PASTICHE_ENGINE_REPOSITORY is not set"),
        ((), {"PASTICHE_ENGINE_REPOSITORY": "s3://pastiche/models/gpu/26.06-py3"}, "not named for this image's Triton tag '26.07-py3'"),
        ((), {"PASTICHE_ONNX_REPOSITORY": ""}, "PASTICHE_ONNX_REPOSITORY is not set"),
        ((), {"TRTEXEC": "/nonexistent/trtexec"}, "trtexec not found"),
    ],
)
def test_refusals_exit_2_with_a_reason_and_never_reach_the_cli(stand_ins, args, env, message):
    result = run(stand_ins, *args, **env)
    assert result.returncode == 2
    assert message in result.stderr
    assert not (stand_ins.parent / "pastiche.args").exists()


def test_no_visible_gpu_is_refused(stand_ins):
    (stand_ins / "nvidia-smi").unlink()
    result = run(stand_ins)
    assert result.returncode == 2 and "no NVIDIA GPU" in result.stderr
    (stand_ins / "nvidia-smi").write_text("#!/bin/sh\nexit 9\n")
    (stand_ins / "nvidia-smi").chmod(0o755)
    result = run(stand_ins)
    assert result.returncode == 2 and "nvidia-smi failed" in result.stderr


def test_trtexec_is_taken_from_path_unless_given(stand_ins, tmp_path):
    other = tmp_path / "trtexec-10"
    other.write_text("#!/bin/sh\n")
    other.chmod(0o755)
    assert run(stand_ins, TRTEXEC=str(other)).returncode == 0
    args = recorded(stand_ins)
    assert args[args.index("--trtexec") + 1] == str(other)



def test_the_script_drives_the_real_cli_to_build_then_verify(tmp_path):
    """pastiche-engines → `pastiche engines` (this venv's) with stand-in trtexec/nvidia-smi, on directories."""
    from deploy.repository import ServingPolicy, Target, build_config, parse_config, render_config
    from pastiche.contract import StyleMetadata
    from tests.export import gpu_stand_ins

    bin_dir = tmp_path / "bin"
    gpu_stand_ins.install(bin_dir)
    (bin_dir / "pastiche").symlink_to(Path(sys.executable).with_name("pastiche"))
    source, engines = tmp_path / "onnx", tmp_path / "gpu" / TAG
    metadata = StyleMetadata(title="Candy", description="", architecture="resnet")
    (source / "candy" / "1").mkdir(parents=True)
    (source / "candy" / "1" / "model.onnx").write_bytes(b"candy")
    (source / "candy" / "config.pbtxt").write_text(render_config(build_config("candy", metadata, Target.ONNX, ServingPolicy(), (1,))))
    engines.mkdir(parents=True)
    repositories = {"PASTICHE_ENGINE_REPOSITORY": str(engines), "PASTICHE_ONNX_REPOSITORY": str(source)}
    built = run(bin_dir, "build", **repositories)
    assert built.returncode == 0, built.stderr
    assert (engines / "candy" / "1" / "model_sm90.plan").is_file()
    assert parse_config((engines / "candy" / "config.pbtxt").read_text()).platform == "tensorrt_plan"
    assert run(bin_dir, "verify", **repositories).returncode == 0
    mismatched = run(bin_dir, "verify", STANDIN_TRT="100600", **repositories)
    assert mismatched.returncode == 1
    assert "built with TensorRT 10.5.0, target runs 10.6.0" in mismatched.stderr

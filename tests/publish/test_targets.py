"""Configs for all three targets parse as Triton's ModelConfig, deterministically; pure version logic."""

from __future__ import annotations

import pytest
from tritonclient.grpc import model_config_pb2 as mc

from deploy.publish import PublishError, check_style_name, compare
from deploy.repository import ServingPolicy, Target, build_config, parse_config, plan_filename, render_config, served_versions, version_files
from pastiche.contract import StyleMetadata

META = StyleMetadata(title="Mosaic", description="tiles", architecture="resnet", precision="fp16")


@pytest.mark.parametrize("target", list(Target))
def test_every_target_parses_and_is_deterministic(target: Target) -> None:
    policy = ServingPolicy(compute_capabilities=("8.9", "8.0"), onnx_tensorrt=True)
    text = render_config(build_config("mosaic", META, target, policy, (3, 2)))
    assert text == render_config(build_config("mosaic", META, target, policy, (2, 3)))
    config = parse_config(text)
    assert list(config.version_policy.specific.versions) == [2, 3]
    assert config.dynamic_batching.default_queue_policy.timeout_action == mc.ModelQueuePolicy.REJECT
    assert config.parameters["precision"].string_value == "fp16"
    kind = config.instance_group[0].kind
    assert kind == (mc.ModelInstanceGroup.KIND_CPU if target is Target.LOCAL else mc.ModelInstanceGroup.KIND_GPU)


def test_gpu_target_names_one_plan_per_compute_capability() -> None:
    config = build_config("m", META, Target.GPU, ServingPolicy(compute_capabilities=("8.9", "8.0")), ())
    assert config.platform == "tensorrt_plan"
    assert dict(config.cc_model_filenames) == {"8.0": "model_sm80.plan", "8.9": "model_sm89.plan"}
    files = version_files(Target.GPU, b"default", {"8.0": b"a", "8.9": b"b"})
    assert set(files) == {"model.plan", "model_sm80.plan", "model_sm89.plan"}
    with pytest.raises(ValueError):
        plan_filename("ampere")


def test_onnx_target_tensorrt_accelerator_only_when_asked() -> None:
    plain = build_config("m", META, Target.ONNX, ServingPolicy(), ())
    assert plain.platform == "onnxruntime_onnx" and not plain.optimization.execution_accelerators.gpu_execution_accelerator
    accelerated = build_config("m", META, Target.ONNX, ServingPolicy(onnx_tensorrt=True), ())
    trt = accelerated.optimization.execution_accelerators.gpu_execution_accelerator[0]
    assert trt.name == "tensorrt" and trt.parameters["precision_mode"] == "FP16"
    assert trt.parameters["trt_engine_cache_enable"] == "1"


def test_without_explicit_versions_latest_two_stay_loaded() -> None:
    config = build_config("m", META, Target.LOCAL, ServingPolicy(), ())
    assert config.version_policy.latest.num_versions == 2
    assert served_versions(config, [1, 2, 5]) == [2, 5]
    pinned = build_config("m", META, Target.LOCAL, ServingPolicy(), (1, 9))
    assert served_versions(pinned, [1, 2, 5]) == [1]


def test_style_names_and_smoke_comparison() -> None:
    import numpy as np

    check_style_name("mosaic-v2")
    for bad in ("_staging.x", "Mosaic", "a/b", ""):
        with pytest.raises(PublishError):
            check_style_name(bad)
    ref = np.zeros((1, 4, 4, 3), np.uint8)
    assert compare(ref + 2, ref, 2, 1).passed
    assert not compare(ref + 3, ref, 2, 1).passed
    assert not compare(ref[:, :2], ref, 2, 1).passed

"""Generated Triton configs parse as Triton's ModelConfig and are byte-for-byte deterministic."""

from __future__ import annotations

from pathlib import Path

from tritonclient.grpc import model_config_pb2 as mc

from deploy.repository import ServingPolicy, Target, build_config, model_versions, parse_config, render_config, write_model
from pastiche.contract import INPUT_NAME, OUTPUT_NAME, StyleMetadata

META = StyleMetadata(title="Mosaic", description="tiles", architecture="resnet", size_multiple=4)


def test_local_config_round_trips_through_model_config_protobuf() -> None:
    text = render_config(build_config("mosaic", META, Target.LOCAL, ServingPolicy()))
    config = parse_config(text)
    assert config.backend == "python"
    assert config.max_batch_size > 1
    assert [i.name for i in config.input] == [INPUT_NAME]
    assert [o.name for o in config.output] == [OUTPUT_NAME]
    assert config.input[0].data_type == mc.TYPE_UINT8
    assert list(config.input[0].dims) == [-1, -1, 3]
    assert config.dynamic_batching.default_queue_policy.timeout_action == mc.ModelQueuePolicy.REJECT
    assert config.dynamic_batching.default_queue_policy.max_queue_size > 0
    assert config.parameters["title"].string_value == "Mosaic"
    assert config.model_warmup[0].inputs[INPUT_NAME].dims[0] % META.size_multiple == 0


def test_same_inputs_give_identical_bytes() -> None:
    first = render_config(build_config("mosaic", META, Target.LOCAL, ServingPolicy()))
    second = render_config(build_config("mosaic", META, Target.LOCAL, ServingPolicy()))
    assert first == second


def test_preferred_batch_sizes_never_exceed_max_batch_size() -> None:
    config = build_config("m", META, Target.LOCAL, ServingPolicy(max_batch_size=2, preferred_batch_sizes=(2, 4)))
    assert list(config.dynamic_batching.preferred_batch_size) == [2]


def test_write_model_appends_versions(tmp_path: Path) -> None:
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"onnx")
    assert write_model(tmp_path / "repo", "mosaic", onnx, META) == 1
    assert write_model(tmp_path / "repo", "mosaic", onnx, META) == 2
    assert model_versions(tmp_path / "repo" / "mosaic") == [1, 2]
    assert (tmp_path / "repo" / "mosaic" / "2" / "model.py").exists()
    parse_config((tmp_path / "repo" / "mosaic" / "config.pbtxt").read_text())

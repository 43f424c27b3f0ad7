"""Loading checkpoints the way the public codebases release them, and failing clearly otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from export.checkpoint import (
    CheckpointNotFound,
    CheckpointUnreadable,
    KeyMismatch,
    ServingOptions,
    load_generator,
)
from export.families import FAMILIES
from tests.export.generators import TINY_CONFIGS, save_original, tiny_generator


def _same_output(a: nn.Module, b: nn.Module, family: str) -> bool:
    low, high = FAMILIES[family].value_range
    side = max(FAMILIES[family].size_multiple, 32)
    x = torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(1)) * (high - low) + low
    with torch.inference_mode():
        return torch.equal(a(x), b(x))


@pytest.mark.parametrize("family", list(TINY_CONFIGS))
def test_plain_state_dict_is_detected_and_loads_strictly(tmp_path: Path, family: str) -> None:
    original = tiny_generator(family)
    loaded = load_generator(save_original(original, tmp_path / "latest_net_G.pth"))
    assert loaded.spec.name == family
    assert loaded.config == TINY_CONFIGS[family]
    assert not loaded.module.training
    assert _same_output(original, loaded.module, family)


def test_data_parallel_prefix_is_stripped(tmp_path: Path) -> None:
    original = tiny_generator("resnet")
    path = tmp_path / "latest_net_G_A.pth"
    torch.save({f"module.{k}": v for k, v in original.state_dict().items()}, path)
    loaded = load_generator(path)
    assert "stripped the 'module.' prefix" in loaded.notes
    assert _same_output(original, loaded.module, "resnet")


def test_legacy_instance_norm_statistics_are_dropped(tmp_path: Path) -> None:
    original = tiny_generator("transformer_net")
    state = original.state_dict()
    width = TINY_CONFIGS["transformer_net"].width
    # PyTorch < 0.4 saved running statistics for every InstanceNorm (as candy.pth does).
    legacy = {"in1.running_mean": torch.zeros(width), "in1.running_var": torch.ones(width)}
    legacy |= {f"res1.in2.{b}": torch.ones(4 * width) for b in ("running_mean", "running_var")}
    path = tmp_path / "candy.pth"
    torch.save(state | legacy, path)
    loaded = load_generator(path)
    assert sorted(loaded.dropped_keys) == sorted(legacy)
    assert _same_output(original, loaded.module, "transformer_net")


def test_cyclegan_instance_norm_counters_are_dropped(tmp_path: Path) -> None:
    original = tiny_generator("resnet")
    path = tmp_path / "old.pth"
    torch.save(original.state_dict() | {"model.2.num_batches_tracked": torch.tensor(0)}, path)
    assert load_generator(path).dropped_keys == ("model.2.num_batches_tracked",)


def test_old_batch_norm_checkpoint_without_counters_loads(tmp_path: Path) -> None:
    original = tiny_generator("unet_256")
    path = tmp_path / "facades.pth"
    torch.save({k: v for k, v in original.state_dict().items() if "num_batches_tracked" not in k}, path)
    loaded = load_generator(path)
    assert _same_output(original, loaded.module, "unet_256")


@pytest.mark.parametrize("wrapper", ["state_dict", "model", "generator"])
def test_wrapped_state_dicts_are_unwrapped(tmp_path: Path, wrapper: str) -> None:
    original = tiny_generator("animegan")
    path = tmp_path / "wrapped.pt"
    torch.save({wrapper: original.state_dict(), "epoch": 12, "optimizer": {"lr": 0.0002}}, path)
    loaded = load_generator(path)
    assert loaded.spec.name == "animegan"
    assert _same_output(original, loaded.module, "animegan")


def test_several_generators_need_an_entry(tmp_path: Path) -> None:
    a, b = tiny_generator("resnet", seed=1), tiny_generator("resnet", seed=2)
    path = tmp_path / "both.pth"
    torch.save({"netG_A": a.state_dict(), "netG_B": b.state_dict()}, path)
    with pytest.raises(CheckpointUnreadable, match="several state_dicts .*netG_A, netG_B.*--entry"):
        load_generator(path)
    assert _same_output(b, load_generator(path, entry="netG_B").module, "resnet")


def test_prefix_selects_a_generator_inside_a_training_checkpoint(tmp_path: Path) -> None:
    generator = tiny_generator("transformer_net")
    state = {f"netG.{k}": v for k, v in generator.state_dict().items()} | {"netD.fc.weight": torch.zeros(1, 4)}
    path = tmp_path / "lightning.ckpt"
    torch.save({"state_dict": state}, path)
    assert _same_output(generator, load_generator(path, prefix="netG.").module, "transformer_net")


def test_half_precision_weights_are_converted(tmp_path: Path) -> None:
    path = tmp_path / "half.pt"
    torch.save({k: v.half() for k, v in tiny_generator("animegan").state_dict().items()}, path)
    loaded = load_generator(path)
    assert all(p.dtype == torch.float32 for p in loaded.module.parameters())
    assert "converted half-precision weights to float32" in loaded.notes


def test_serving_options_reach_the_config(tmp_path: Path) -> None:
    path = save_original(tiny_generator("animegan"), tmp_path / "paprika.pt")
    assert load_generator(path, options=ServingOptions(align_corners=False)).config.align_corners is False
    path = save_original(tiny_generator("unet_256"), tmp_path / "facades.pth")
    loaded = load_generator(path, options=ServingOptions(batch_stats="per_image"))
    assert loaded.config.batch_stats == "per_image"


def test_wrong_keys_name_the_closest_family_and_the_offending_keys(tmp_path: Path) -> None:
    state = tiny_generator("resnet").state_dict()
    state.pop("model.10.conv_block.5.weight")
    state["model.10.conv_block.9.weight"] = torch.zeros(1)
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    with pytest.raises(KeyMismatch) as caught:
        load_generator(path)
    message = str(caught.value)
    assert "closest is 'resnet'" in message
    assert "missing keys (1): model.10.conv_block.5.weight" in message
    assert "unexpected keys (1): model.10.conv_block.9.weight" in message
    assert caught.value.family == "resnet"


def test_shape_mismatch_is_reported(tmp_path: Path) -> None:
    state = tiny_generator("transformer_net").state_dict()
    state["res1.conv1.conv2d.bias"] = torch.zeros(3)
    path = tmp_path / "shape.pth"
    torch.save(state, path)
    with pytest.raises(KeyMismatch, match=r"res1\.conv1\.conv2d\.bias is \[3\] not \[16\]"):
        load_generator(path)


def test_requested_family_that_does_not_fit_points_to_the_one_that_does(tmp_path: Path) -> None:
    path = save_original(tiny_generator("resnet"), tmp_path / "g.pth")
    with pytest.raises(KeyMismatch, match="(?s)do not match family 'animegan'.*pass --family resnet"):
        load_generator(path, family="animegan")


def test_unknown_family_is_refused(tmp_path: Path) -> None:
    path = save_original(tiny_generator("resnet"), tmp_path / "g.pth")
    with pytest.raises(Exception, match="unknown family 'stylegan'; known families: resnet"):
        load_generator(path, family="stylegan")


def test_non_generator_state_dict_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "classifier.pth"
    torch.save(nn.Linear(4, 2).state_dict(), path)
    with pytest.raises(KeyMismatch, match="not a generator of any known family"):
        load_generator(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointNotFound, match="no such file"):
        load_generator(tmp_path / "nope.pth")
    with pytest.raises(CheckpointNotFound, match="not a file"):
        load_generator(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"<html>404 Not Found</html>", "not a PyTorch checkpoint"),
        (b"PK\x03\x04 truncated zip", "not a readable PyTorch checkpoint"),
    ],
)
def test_corrupt_files_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "corrupt.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointUnreadable, match=message):
        load_generator(path)


def test_truncated_checkpoint_is_refused(tmp_path: Path) -> None:
    path = save_original(tiny_generator("resnet"), tmp_path / "full.pth")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointUnreadable):
        load_generator(truncated)


def test_pickled_module_needs_trust(tmp_path: Path) -> None:
    original = tiny_generator("transformer_net")
    path = tmp_path / "whole_model.pth"
    torch.save(original, path)
    with pytest.raises(CheckpointUnreadable, match="--trust-pickle"):
        load_generator(path)
    loaded = load_generator(path, trust_pickle=True)
    assert _same_output(original, loaded.module, "transformer_net")


def test_non_mapping_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(CheckpointUnreadable, match="holds a list, not a state_dict"):
        load_generator(path)

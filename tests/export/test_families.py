"""Generator families: key layouts of the released checkpoints, detection from shapes, behaviour."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from export.checkpoint import shapes_of
from export.families import FAMILIES, FamilyMismatch, ResnetConfig, UnetConfig
from export.families.animegan import AnimeGanConfig, AnimeGanGenerator
from export.families.normalization import PerImageBatchNorm
from tests.export.generators import tiny_generator


def _meta(family: str, config: object = None) -> nn.Module:
    spec = FAMILIES[family]
    with torch.device("meta"):
        return spec.build(config if config is not None else spec.default_config)


def _parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    ("family", "config", "parameters", "keys"),
    [
        # Parameter counts the original repositories print when they build these networks.
        ("resnet", ResnetConfig(n_blocks=9), 11_378_179, {"model.26.weight": (3, 64, 7, 7)}),
        ("resnet", ResnetConfig(n_blocks=6), 7_837_699, {"model.10.conv_block.5.weight": (256, 256, 3, 3)}),
        (
            "unet_256",
            None,
            54_413_955,
            {
                "model.model.0.weight": (64, 3, 4, 4),
                "model.model.3.weight": (128, 3, 4, 4),
                "model.model.1.model.2.running_var": (128,),
                "model.model.1.model.3.model.3.model.3.model.3.model.3.model.3.model.1.weight": (512, 512, 4, 4),
            },
        ),
        (
            "unet_128",
            None,
            41_828_995,
            {"model.model.1.model.3.model.3.model.3.model.3.model.3.model.1.weight": (512, 512, 4, 4)},
        ),
        (
            "animegan",
            None,
            2_143_552,
            {
                "block_a.0.1.weight": (32, 3, 7, 7),
                "block_a.1.2.weight": (64,),
                "block_c.1.layers.0.1.weight": (256, 128, 1, 1),
                "block_c.1.layers.1.1.weight": (256, 1, 3, 3),
                "block_c.1.layers.1.1.bias": (256,),
                "block_c.1.layers.2.weight": (256, 256, 1, 1),
                "block_c.1.layers.3.bias": (256,),
                "out_layer.0.weight": (3, 32, 1, 1),
            },
        ),
        (
            "transformer_net",
            None,
            1_679_235,
            {"conv1.conv2d.weight": (32, 3, 9, 9), "res5.in2.weight": (128,), "deconv3.conv2d.weight": (3, 32, 9, 9)},
        ),
    ],
)
def test_full_size_layout_matches_the_originals(family: str, config: object, parameters: int, keys: dict) -> None:
    module = _meta(family, config)
    shapes = shapes_of(module.state_dict())
    assert _parameters(module) == parameters
    for key, shape in keys.items():
        assert shapes[key] == shape


def test_instance_norm_checkpoints_carry_no_norm_keys() -> None:
    shapes = shapes_of(_meta("resnet").state_dict())
    # affine=False, track_running_stats=False: model.2 (the first norm) has nothing to store.
    assert not any(key.startswith("model.2.") for key in shapes)
    assert "model.1.bias" in shapes


def test_dropout_shifts_resnet_block_indices() -> None:
    plain = shapes_of(_meta("resnet", ResnetConfig(n_blocks=6)).state_dict())
    dropout = shapes_of(_meta("resnet", ResnetConfig(n_blocks=6, use_dropout=True)).state_dict())
    assert "model.10.conv_block.5.weight" in plain and "model.10.conv_block.6.weight" not in plain
    assert "model.10.conv_block.6.weight" in dropout and "model.10.conv_block.5.weight" not in dropout


@pytest.mark.parametrize(
    ("family", "config"),
    [
        ("resnet", ResnetConfig()),
        ("resnet", ResnetConfig(ngf=32, n_blocks=6, norm="batch", use_dropout=True)),
        ("resnet", ResnetConfig(ngf=8, n_blocks=3, norm="instance", use_dropout=True)),
        ("unet_256", UnetConfig(num_downs=8, ngf=16, norm="instance")),
        ("unet_128", UnetConfig(num_downs=7, ngf=64, norm="batch")),
        ("animegan", AnimeGanConfig()),
        ("transformer_net", FAMILIES["transformer_net"].default_config),
    ],
)
def test_config_is_detected_from_shapes(family: str, config: object) -> None:
    assert FAMILIES[family].detect(shapes_of(_meta(family, config).state_dict())) == config


def test_other_families_do_not_detect_a_resnet() -> None:
    shapes = shapes_of(_meta("resnet").state_dict())
    for name in ("unet_256", "unet_128", "animegan", "transformer_net"):
        with pytest.raises(FamilyMismatch):
            FAMILIES[name].detect(shapes)


def test_unet_depth_separates_unet_128_from_unet_256() -> None:
    shapes = shapes_of(_meta("unet_128").state_dict())
    with pytest.raises(FamilyMismatch, match="7 nested blocks"):
        FAMILIES["unet_256"].detect(shapes)


@pytest.mark.parametrize("family", ["resnet", "unet_256", "unet_128", "animegan", "transformer_net"])
def test_output_keeps_the_input_size_on_the_size_multiple(family: str) -> None:
    spec = FAMILIES[family]
    side = max(spec.size_multiple, 32)
    generator = tiny_generator(family)
    x = torch.rand(1, 3, side, 2 * side) * (spec.value_range[1] - spec.value_range[0]) + spec.value_range[0]
    with torch.inference_mode():
        assert generator(x).shape == x.shape


def test_animegan_upsampling_choice_changes_the_output() -> None:
    torch.manual_seed(0)
    hub = AnimeGanGenerator(AnimeGanConfig(align_corners=True)).eval()
    test_py = AnimeGanGenerator(AnimeGanConfig(align_corners=False)).eval()
    test_py.load_state_dict(hub.state_dict())
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.inference_mode():
        assert not torch.allclose(hub(x), test_py(x))


def test_per_image_batch_norm_matches_train_mode_at_batch_one_and_ignores_neighbours() -> None:
    torch.manual_seed(0)
    per_image = PerImageBatchNorm(4)
    nn.init.normal_(per_image.weight)
    nn.init.normal_(per_image.bias)
    reference = nn.BatchNorm2d(4).train()
    reference.load_state_dict(per_image.state_dict())
    a, b = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8) * 5 + 3
    with torch.no_grad():
        assert torch.allclose(per_image(a), reference(a), atol=1e-5)
        assert torch.allclose(per_image(torch.cat([a, b]))[:1], per_image(a), atol=1e-5)

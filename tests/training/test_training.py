"""A few steps of real GAN training at tiny width: it runs, checkpoints, stops and resumes exactly."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from export.families.resnet import ResnetConfig, ResnetGenerator
from export.families.transformer_net import TransformerNet, TransformerNetConfig
from export.training.generators import GeneratorSpec
from export.training.trainer import (
    STATE_FILE,
    TrainConfig,
    Trainer,
    open_trainer,
    run_training,
)

TINY = TrainConfig(
    style="tiny",
    target="cartoon",
    generator=GeneratorSpec("resnet", width=4, n_blocks=1),
    steps=4,
    batch_size=1,
    crop=32,
    d_ndf=8,
    checkpoint_every=2,
    seed=3,
)


def assert_same_training_state(a: Trainer, b: Trainer) -> None:
    assert a.step_count == b.step_count
    assert a.history.values == b.history.values
    for module in ("generator", "discriminator"):
        sa, sb = getattr(a, module).state_dict(), getattr(b, module).state_dict()
        assert sa.keys() == sb.keys()
        for key in sa:
            assert torch.equal(sa[key], sb[key]), f"{module}.{key} differs"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Trainer:
    run_dir = tmp_path_factory.mktemp("full")
    trainer = open_trainer(TINY, run_dir, resume=False)
    run_training(trainer, run_dir)
    return trainer


def test_training_updates_both_networks(uninterrupted: Trainer) -> None:
    fresh = Trainer(TINY)
    assert uninterrupted.step_count == 4
    assert len(uninterrupted.history) == 4
    for module in ("generator", "discriminator"):
        before = getattr(fresh, module).state_dict()
        after = getattr(uninterrupted, module).state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in before), f"{module} did not change"


def test_resume_continues_exactly_like_an_uninterrupted_run(uninterrupted: Trainer, tmp_path: Path) -> None:
    first = open_trainer(TINY, tmp_path, resume=False)
    run_training(first, tmp_path, stop_after=2)
    assert first.step_count == 2 and (tmp_path / STATE_FILE).exists()
    resumed = open_trainer(TINY, tmp_path, resume=True)
    assert resumed.step_count == 2
    run_training(resumed, tmp_path)
    assert_same_training_state(resumed, uninterrupted)


def test_stop_request_checkpoints_the_last_step_and_resumes_exactly(uninterrupted: Trainer, tmp_path: Path) -> None:
    trainer = open_trainer(TINY, tmp_path, resume=False)
    run_training(trainer, tmp_path, should_stop=lambda: trainer.step_count >= 3)
    assert trainer.step_count == 3
    resumed = open_trainer(TINY, tmp_path, resume=True)
    assert resumed.step_count == 3
    run_training(resumed, tmp_path)
    assert_same_training_state(resumed, uninterrupted)


def test_resume_refuses_changed_settings_but_allows_more_steps(tmp_path: Path) -> None:
    run_training(open_trainer(TINY, tmp_path, resume=False), tmp_path, stop_after=1)
    with pytest.raises(ValueError, match="lr_g"):
        open_trainer(replace(TINY, lr_g=1e-3), tmp_path, resume=True)
    longer = open_trainer(replace(TINY, steps=6), tmp_path, resume=True)
    assert longer.step_count == 1
    with pytest.raises(FileExistsError, match="--resume"):
        open_trainer(TINY, tmp_path, resume=False)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        open_trainer(TINY, tmp_path / "elsewhere", resume=True)


def test_resnet_checkpoint_is_a_plain_pix2pix_state_dict(tmp_path: Path) -> None:
    trainer = open_trainer(replace(TINY, steps=1), tmp_path, resume=False)
    path = run_training(trainer, tmp_path)
    assert path.name == "latest_net_G.pth"
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert all(key.startswith("model.") for key in state)
    generator = ResnetGenerator(ResnetConfig(ngf=4, n_blocks=1))
    generator.load_state_dict(state, strict=True)


def test_transformer_net_checkpoint_is_a_plain_examples_state_dict(tmp_path: Path) -> None:
    config = replace(TINY, generator=GeneratorSpec("transformer_net", width=4), steps=1)
    path = run_training(open_trainer(config, tmp_path, resume=False), tmp_path)
    assert path.name == "tiny.pth"
    state = torch.load(path, map_location="cpu", weights_only=True)
    TransformerNet(TransformerNetConfig(width=4)).load_state_dict(state, strict=True)


@pytest.mark.parametrize("stabiliser", ["r1", "none"])
def test_other_stabilisers_train(stabiliser: str, tmp_path: Path) -> None:
    config = replace(TINY, stabiliser=stabiliser, adversarial="hinge", steps=2)
    trainer = open_trainer(config, tmp_path, resume=False)
    run_training(trainer, tmp_path)
    r1 = trainer.history.values["r1"]
    assert (max(r1) > 0) == (stabiliser == "r1")
    assert not any(k.endswith("original") for k in trainer.discriminator.state_dict())


@pytest.mark.parametrize(
    "change, message",
    [
        ({"stabiliser": "dropout"}, "stabiliser"),
        ({"adversarial": "wasserstein"}, "adversarial"),
        ({"crop": 30}, "crop"),
        ({"target": "oil"}, "oil"),
        ({"steps": 0}, "positive"),
    ],
)
def test_invalid_configs_are_rejected(change: dict[str, object], message: str) -> None:
    with pytest.raises((ValueError, KeyError), match=message):
        replace(TINY, **change)


def test_batch_norm_statistics_freeze_from_the_configured_step(tmp_path: Path) -> None:
    config = replace(TINY, generator=GeneratorSpec("resnet", width=4, n_blocks=1, norm="batch"), freeze_norm_from=0.5)
    trainer = open_trainer(config, tmp_path, resume=False)

    def running_means() -> list[torch.Tensor]:
        return [m.running_mean.clone() for m in trainer.generator.modules() if isinstance(m, torch.nn.BatchNorm2d)]

    trainer.step()
    after_first = running_means()
    trainer.step()
    at_freeze = running_means()
    assert any(not torch.equal(a, b) for a, b in zip(after_first, at_freeze, strict=True))
    trainer.step()
    trainer.step()
    assert all(torch.equal(a, b) for a, b in zip(at_freeze, running_means(), strict=True))
    assert [config.norm_frozen(step) for step in range(4)] == [False, False, True, True]


def test_configs_written_before_a_field_existed_still_load() -> None:
    data = TINY.to_dict()
    del data["freeze_norm_from"]
    assert TrainConfig.from_dict(data) == TINY

"""The conditional-GAN training loop, with full-state checkpoints that resume bit-for-bit.

One step is pix2pix's alternation: the generator stylises a batch once; the discriminator is
updated on (photo, target) versus (photo, detached output); then the generator is updated
against the updated discriminator plus an L1 term towards the target. Generator and
discriminator have separate learning rates (two time-scale update rule), constant for the first
part of training and decaying linearly to zero after ``decay_from``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from export.training.data import Augmentation, PairSampler
from export.training.discriminator import DiscriminatorConfig, PatchDiscriminator
from export.training.generators import GeneratorSpec, RangeAdapter, to_unit_range
from export.training.losses import OBJECTIVES, r1_penalty
from export.training.targets import get_target

STABILISERS: tuple[str, ...] = ("spectral", "r1", "none")

STATE_FILE = "training_state.pt"
LOSS_KEYS: tuple[str, ...] = ("d_loss", "d_real", "d_fake", "g_adv", "g_l1", "r1")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run; two runs with equal configs train equal weights."""

    style: str
    target: str
    generator: GeneratorSpec
    steps: int = 2400
    batch_size: int = 4
    crop: int = 128
    lr_g: float = 2e-4
    lr_d: float = 4e-4
    beta1: float = 0.5
    beta2: float = 0.999
    l1_weight: float = 100.0
    adversarial: str = "lsgan"
    stabiliser: str = "spectral"
    r1_gamma: float = 1.0
    d_ndf: int = 32
    d_layers: int = 3
    permute_channels: bool = True
    """Colour augmentation by shuffling R, G, B (the target is rendered after the shuffle)."""
    decay_from: float = 0.5
    """Fraction of ``steps`` after which both learning rates decay linearly to zero."""
    freeze_norm_from: float = 1.0
    """Fraction of ``steps`` after which the generator's BatchNorm layers stop using batch statistics
    and train in inference mode (running statistics frozen), so the end of training optimises exactly
    the function that is served. 1.0 never freezes; no effect on InstanceNorm."""
    seed: int = 0
    checkpoint_every: int = 100

    def __post_init__(self) -> None:
        get_target(self.target)
        if self.adversarial not in OBJECTIVES:
            raise ValueError(f"adversarial loss must be one of {', '.join(OBJECTIVES)}, got {self.adversarial!r}")
        if self.stabiliser not in STABILISERS:
            raise ValueError(f"stabiliser must be one of {', '.join(STABILISERS)}, got {self.stabiliser!r}")
        if self.steps < 1 or self.batch_size < 1 or self.checkpoint_every < 1:
            raise ValueError("steps, batch_size and checkpoint_every must be positive")
        if self.crop < 32 or self.crop % 4:
            raise ValueError(f"crop must be a multiple of 4 and at least 32, got {self.crop}")
        if not (0.0 <= self.decay_from <= 1.0 and 0.0 <= self.freeze_norm_from <= 1.0):
            raise ValueError("decay_from and freeze_norm_from must be within [0, 1]")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; fields added since ``data`` was written take their defaults."""
        values = dict(data)
        values["generator"] = GeneratorSpec(**values["generator"])
        return cls(**values)

    def norm_frozen(self, step: int) -> bool:
        """Whether BatchNorm layers train in inference mode at ``step``."""
        return step >= int(self.freeze_norm_from * self.steps)

    def learning_rate_factor(self, step: int) -> float:
        """Multiplier of both learning rates at ``step``: 1, then linear decay to 0 at ``steps``."""
        start = int(self.decay_from * self.steps)
        if step < start:
            return 1.0
        return max(0.0, 1.0 - (step - start) / max(1, self.steps - start))


RESUMABLE_CHANGES = frozenset({"steps", "checkpoint_every"})
"""Config fields a resumed run may change (training longer, checkpointing more often)."""


@dataclass
class LossHistory:
    """Per-step losses and discriminator scores."""

    values: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in LOSS_KEYS})

    def append(self, **losses: float) -> None:
        for key in LOSS_KEYS:
            self.values[key].append(float(losses.get(key, 0.0)))

    def mean_over(self, key: str, last: int) -> float:
        """Mean of the last ``last`` recorded values of ``key``."""
        data = self.values[key][-last:]
        return float(np.mean(data)) if data else float("nan")

    def __len__(self) -> int:
        return len(self.values["d_loss"])


@dataclass
class Trainer:
    """Generator, discriminator, optimisers and data of one run; :meth:`step` does one update."""

    config: TrainConfig
    generator: nn.Module = field(init=False)
    discriminator: PatchDiscriminator = field(init=False)
    step_count: int = field(init=False, default=0)
    elapsed_s: float = field(init=False, default=0.0)
    history: LossHistory = field(init=False, default_factory=LossHistory)

    def __post_init__(self) -> None:
        config = self.config
        torch.manual_seed(config.seed)
        self.generator = config.generator.build()
        self.adapter = RangeAdapter(self.generator, config.generator.family_spec.value_range)
        self.discriminator = PatchDiscriminator(
            DiscriminatorConfig(
                ndf=config.d_ndf, n_layers=config.d_layers, spectral_norm=config.stabiliser == "spectral"
            )
        )
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr_d, betas=betas)
        self.sampler = PairSampler(
            get_target(config.target),
            Augmentation(crop=config.crop, permute_channels=config.permute_channels),
            seed=config.seed,
        )
        self.d_objective, self.g_objective = OBJECTIVES[config.adversarial]

    def _set_learning_rates(self) -> None:
        factor = self.config.learning_rate_factor(self.step_count)
        for group in self.opt_g.param_groups:
            group["lr"] = self.config.lr_g * factor
        for group in self.opt_d.param_groups:
            group["lr"] = self.config.lr_d * factor

    def step(self) -> dict[str, float]:
        """One discriminator update and one generator update on a fresh batch; returns the losses."""
        config = self.config
        started = time.perf_counter()
        photos, targets = self.sampler.batch(config.batch_size)
        x, y = to_unit_range(torch.from_numpy(photos)), to_unit_range(torch.from_numpy(targets))
        self._set_learning_rates()
        self.generator.train()
        if config.norm_frozen(self.step_count):
            freeze_batch_norm(self.generator)
        self.discriminator.train()
        fake = self.adapter(x)

        self.discriminator.requires_grad_(True)
        use_r1 = config.stabiliser == "r1"
        if use_r1:
            y.requires_grad_(True)
        real_scores = self.discriminator(x, y)
        fake_scores = self.discriminator(x, fake.detach())
        d_loss = self.d_objective(real_scores, fake_scores)
        r1 = r1_penalty(real_scores, y) if use_r1 else torch.zeros(())
        self.opt_d.zero_grad(set_to_none=True)
        (d_loss + 0.5 * config.r1_gamma * r1).backward()
        self.opt_d.step()

        self.discriminator.requires_grad_(False)
        g_adv = self.g_objective(self.discriminator(x, fake))
        g_l1 = (fake - y.detach()).abs().mean()
        self.opt_g.zero_grad(set_to_none=True)
        (g_adv + config.l1_weight * g_l1).backward()
        self.opt_g.step()

        losses = {
            "d_loss": d_loss.item(),
            "d_real": real_scores.mean().item(),
            "d_fake": fake_scores.mean().item(),
            "g_adv": g_adv.item(),
            "g_l1": g_l1.item(),
            "r1": r1.item(),
        }
        self.history.append(**losses)
        self.step_count += 1
        self.elapsed_s += time.perf_counter() - started
        return losses

    def state(self) -> dict[str, Any]:
        """Everything needed to continue exactly: weights, optimisers, step, time, losses, RNGs."""
        return {
            "config": self.config.to_dict(),
            "step": self.step_count,
            "elapsed_s": self.elapsed_s,
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "history": self.history.values,
            "torch_rng": torch.get_rng_state(),
            "sampler_rng": self.sampler.rng_state(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state`; the saved config must match except for resumable fields."""
        saved = TrainConfig.from_dict(state["config"])
        changed = {f.name for f in fields(TrainConfig) if getattr(saved, f.name) != getattr(self.config, f.name)}
        if changed - RESUMABLE_CHANGES:
            raise ValueError(
                "cannot resume: the checkpoint was trained with different settings for "
                + ", ".join(sorted(changed - RESUMABLE_CHANGES))
            )
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.step_count = int(state["step"])
        self.elapsed_s = float(state["elapsed_s"])
        self.history = LossHistory({k: list(map(float, v)) for k, v in state["history"].items()})
        torch.set_rng_state(state["torch_rng"])
        self.sampler.set_rng_state(state["sampler_rng"])


def freeze_batch_norm(module: nn.Module) -> None:
    """Put every BatchNorm layer of ``module`` in inference mode (running statistics, no updates)."""
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.eval()


def save_atomically(obj: object, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename, so an interrupted save never corrupts ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(obj, partial)
    os.replace(partial, path)


def load_state_file(path: Path) -> dict[str, Any]:
    """Read a training state saved by :func:`save_checkpoint`."""
    return torch.load(path, map_location="cpu", weights_only=True)


def save_checkpoint(trainer: Trainer, out_dir: Path) -> Path:
    """Write the full training state and the generator alone in its family's format; returns the latter."""
    save_atomically(trainer.state(), out_dir / STATE_FILE)
    generator_path = out_dir / trainer.config.generator.checkpoint_name(trainer.config.style)
    # Exactly what the original codebases save: a plain CPU state_dict of the generator module.
    save_atomically(trainer.generator.state_dict(), generator_path)
    return generator_path


def open_trainer(config: TrainConfig, out_dir: Path, resume: bool) -> Trainer:
    """A new trainer, or one restored from ``out_dir`` when ``resume`` (error if nothing to resume)."""
    trainer = Trainer(config)
    state_path = out_dir / STATE_FILE
    if resume:
        if not state_path.exists():
            raise FileNotFoundError(f"nothing to resume: {state_path} does not exist")
        trainer.load_state(load_state_file(state_path))
    elif state_path.exists():
        raise FileExistsError(f"{state_path} exists: pass --resume to continue it, or choose another --out")
    return trainer


def run_training(
    trainer: Trainer,
    out_dir: Path,
    on_step: Callable[[Trainer, dict[str, float]], None] | None = None,
    stop_after: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Train until ``config.steps`` (or ``stop_after`` more steps), checkpointing periodically.

    ``should_stop`` is polled between steps (an interrupt request): training then checkpoints the
    last completed step and returns, so a resumed run continues exactly where this one stopped.
    ``on_step`` is called after every step. Returns the generator checkpoint path.
    """
    config = trainer.config
    end = config.steps if stop_after is None else min(config.steps, trainer.step_count + stop_after)
    generator_path = out_dir / config.generator.checkpoint_name(config.style)
    saved_at = -1
    while trainer.step_count < end and not (should_stop is not None and should_stop()):
        losses = trainer.step()
        if on_step is not None:
            on_step(trainer, losses)
        if trainer.step_count % config.checkpoint_every == 0:
            generator_path = save_checkpoint(trainer, out_dir)
            saved_at = trainer.step_count
    if saved_at != trainer.step_count or not generator_path.exists():
        generator_path = save_checkpoint(trainer, out_dir)
    return generator_path


def with_overrides(config: TrainConfig, **overrides: Any) -> TrainConfig:
    """``config`` with the non-``None`` overrides applied (generator fields included)."""
    generator_fields = {f.name for f in fields(GeneratorSpec)}
    gen = {k: v for k, v in overrides.items() if k in generator_fields and v is not None}
    rest = {k: v for k, v in overrides.items() if k not in generator_fields and v is not None}
    generator = replace(config.generator, **gen) if gen else config.generator
    return replace(config, generator=generator, **rest)

"""Adversarial objectives (LSGAN, hinge) and the R1 gradient penalty.

Each objective is a pair of pure functions of discriminator outputs: what the discriminator
minimises given scores for real and generated pairs, and what the generator minimises given
scores for its own output.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def lsgan_discriminator(real: Tensor, fake: Tensor) -> Tensor:
    """Least-squares GAN: push real scores to 1 and fake scores to 0."""
    return 0.5 * (((real - 1.0) ** 2).mean() + (fake**2).mean())


def lsgan_generator(fake: Tensor) -> Tensor:
    """Least-squares GAN: push the generator's scores to 1."""
    return ((fake - 1.0) ** 2).mean()


def hinge_discriminator(real: Tensor, fake: Tensor) -> Tensor:
    """Hinge loss: real scores above +1, fake scores below -1."""
    return torch.relu(1.0 - real).mean() + torch.relu(1.0 + fake).mean()


def hinge_generator(fake: Tensor) -> Tensor:
    """Hinge loss, generator side: raise the discriminator's scores."""
    return -fake.mean()


OBJECTIVES: dict[str, tuple[Callable[[Tensor, Tensor], Tensor], Callable[[Tensor], Tensor]]] = {
    "lsgan": (lsgan_discriminator, lsgan_generator),
    "hinge": (hinge_discriminator, hinge_generator),
}


def r1_penalty(scores: Tensor, real: Tensor) -> Tensor:
    """R1 (Mescheder et al. 2018): mean squared norm of ∇ D(real) with respect to the real image.

    ``real`` must have ``requires_grad`` set before ``scores`` were computed from it.
    """
    (grad,) = torch.autograd.grad(scores.sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()

"""The bundled styles: generators trained in this repository, shipped next to this module.

Each style directory holds the generator checkpoint in its family's original format, the
model card (``MODEL_CARD.md``), the before/after preview (``preview.png``) and the measured
metrics (``metrics.json``). :data:`BUNDLED_STYLES` is the one list of them: the training CLI takes
its recipes from here, and the model repository builder serves exactly these.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from export.families import FamilySpec
from export.training.generators import GeneratorSpec
from export.training.targets import TargetFilter, get_target
from export.training.trainer import TrainConfig
from pastiche.contract import StyleMetadata

STYLES_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class BundledStyle:
    """A shipped style: what it is, how it was trained, where its files are, what it must achieve."""

    name: str
    title: str
    description: str
    recipe: TrainConfig
    margin_db: float
    """Held-out PSNR gain over the identity baseline (mean over photographs, dB) that tests enforce."""

    @property
    def family(self) -> str:
        return self.recipe.generator.family

    @property
    def family_spec(self) -> FamilySpec:
        return self.recipe.generator.family_spec

    @property
    def target(self) -> TargetFilter:
        return get_target(self.recipe.target)

    @property
    def directory(self) -> Path:
        return STYLES_DIR / self.name

    @property
    def checkpoint(self) -> Path:
        """The generator ``state_dict`` as the family's original code saves it."""
        return self.directory / self.recipe.generator.checkpoint_name(self.name)

    @property
    def preview(self) -> Path:
        return self.directory / "preview.png"

    @property
    def model_card(self) -> Path:
        return self.directory / "MODEL_CARD.md"

    @property
    def metrics_path(self) -> Path:
        return self.directory / "metrics.json"

    def checkpoint_sha256(self) -> str:
        """Hex SHA-256 of the shipped checkpoint (changes whenever the weights do)."""
        return hashlib.sha256(self.checkpoint.read_bytes()).hexdigest()

    def metrics(self) -> dict[str, Any]:
        """The measurements written when the checkpoint was trained."""
        return json.loads(self.metrics_path.read_text())

    def build_generator(self) -> nn.Module:
        """The family module at this style's width, untrained."""
        return self.recipe.generator.build()

    def load_generator(self) -> nn.Module:
        """The family module with the shipped checkpoint loaded strictly, in eval mode."""
        generator = self.build_generator()
        state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        generator.load_state_dict(state, strict=True)
        return generator.eval()

    def metadata(self) -> StyleMetadata:
        """Served metadata for this style (``preview_key`` is left to whoever uploads the preview)."""
        spec = self.family_spec
        return StyleMetadata(
            title=self.title,
            description=self.description,
            architecture=spec.name,
            size_multiple=spec.size_multiple,
            preferred_side=spec.preferred_side,
        )


def resnet_recipe(style: str, target: str, steps: int = 2400, permute_channels: bool = False) -> TrainConfig:
    """The CycleGAN-ResNet recipe: ngf 16, 6 blocks, BatchNorm frozen for the second half.

    BatchNorm rather than CycleGAN's InstanceNorm because InstanceNorm without affine makes the
    generator blind to an image's global colour and brightness, which a filter target keeps; the
    statistics are frozen halfway so the rest of training optimises the served (inference-mode)
    network. Both choices are measured in the norm ablation.
    """
    return TrainConfig(
        style=style,
        target=target,
        generator=GeneratorSpec("resnet", 16, 6, norm="batch"),
        steps=steps,
        freeze_norm_from=0.5,
        permute_channels=permute_channels,
    )


BUNDLED_STYLES: dict[str, BundledStyle] = {
    s.name: s
    for s in (
        BundledStyle(
            name="watercolor",
            title="Watercolor",
            description=(
                "Flat watercolour washes with dark contours. CycleGAN ResNet generator trained here "
                "to imitate OpenCV's stylization filter."
            ),
            recipe=resnet_recipe("watercolor", "watercolor"),
            margin_db=4.5,
        ),
        BundledStyle(
            name="pencil",
            title="Pencil sketch",
            description="Graphite hatching on white paper. Johnson TransformerNet trained here to imitate OpenCV's pencilSketch.",
            # pytorch/examples trains TransformerNet with Adam at 1e-3 (its unbounded 0..255 output needs
            # it) on 256 px crops: InstanceNorm statistics of a larger crop are closer to a whole photo's.
            recipe=TrainConfig(
                style="pencil",
                target="pencil",
                generator=GeneratorSpec("transformer_net", 16),
                steps=2400,
                lr_g=1e-3,
                crop=256,
                batch_size=1,
            ),
            margin_db=3.0,
        ),
        BundledStyle(
            name="cartoon",
            title="Cartoon",
            description=(
                "Smoothed colour regions with bold ink outlines. CycleGAN ResNet generator trained here "
                "to imitate an edge-preserving cartoon filter."
            ),
            # Shuffled channels: most training photographs are grey, and without them the generator
            # desaturated colours it rarely saw (a blue sky came out grey); see the permute_channels ablation.
            recipe=resnet_recipe("cartoon", "cartoon", permute_channels=True),
            margin_db=3.0,
        ),
    )
}


def get_style(name: str) -> BundledStyle:
    """The bundled style called ``name``; ``KeyError`` lists the known ones."""
    try:
        return BUNDLED_STYLES[name]
    except KeyError:
        raise KeyError(f"unknown bundled style {name!r}; known: {', '.join(sorted(BUNDLED_STYLES))}") from None

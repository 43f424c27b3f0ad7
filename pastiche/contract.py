"""The served contract: the one definition of tensor names, dtypes, layout and model metadata.

Every exported model, every Triton config, the gateway and the benchmarks import these names,
so a backend service that reads the README's contract section talks to all of them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final

import numpy as np

INPUT_NAME: Final = "image"
"""Input tensor: UINT8, shape [N, H, W, 3], RGB, values 0..255, no client-side normalization."""

OUTPUT_NAME: Final = "stylized"
"""Output tensor: UINT8, shape [N, H, W, 3], RGB, same H and W as the input."""

TENSOR_DTYPE: Final = np.uint8
TRITON_DTYPE: Final = "UINT8"
CONFIG_DTYPE: Final = "TYPE_UINT8"
CHANNELS: Final = 3
LAYOUT: Final = "NHWC"

INTERNAL_MODEL_PREFIX: Final = "_"
"""Triton models whose name starts with this are internal (publish candidates), never styles."""

METADATA_PREFIX: Final = "pastiche."
"""Prefix of Pastiche keys in ONNX ``metadata_props`` (Triton ``parameters`` use the bare keys)."""


@dataclass(frozen=True)
class StyleMetadata:
    """What a served style says about itself.

    Stored twice from this one definition: in the ONNX model's ``metadata_props`` (prefixed
    with ``pastiche.``) and in the Triton ``config.pbtxt`` ``parameters`` (bare keys), so that
    the gateway can list styles and pad images correctly from Triton alone.
    """

    title: str
    description: str
    architecture: str
    precision: str = "fp32"
    size_multiple: int = 4
    preferred_side: int = 512
    max_side: int = 1024
    preview_key: str = ""

    def to_parameters(self) -> dict[str, str]:
        """Bare-key string map, as Triton model config ``parameters`` hold it."""
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}

    def to_onnx_metadata(self) -> dict[str, str]:
        """Prefixed string map for ONNX ``metadata_props``."""
        return {METADATA_PREFIX + k: v for k, v in self.to_parameters().items()}

    @classmethod
    def from_parameters(cls, params: dict[str, str]) -> StyleMetadata:
        """Inverse of :meth:`to_parameters`; unknown keys are ignored, missing ones defaulted."""
        kwargs: dict[str, object] = {}
        for f in fields(cls):
            if f.name in params:
                kwargs[f.name] = int(params[f.name]) if f.type in (int, "int") else params[f.name]
        return cls(**kwargs)  # type: ignore[arg-type]

    @classmethod
    def from_onnx_metadata(cls, props: dict[str, str]) -> StyleMetadata:
        """Inverse of :meth:`to_onnx_metadata`."""
        bare = {k[len(METADATA_PREFIX):]: v for k, v in props.items() if k.startswith(METADATA_PREFIX)}
        return cls.from_parameters(bare)

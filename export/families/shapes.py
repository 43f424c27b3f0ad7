"""Reading a family's hyper-parameters off a state_dict's key names and tensor shapes.

Detection is pure logic over ``{key: shape}``: it never needs the tensors themselves, so it is
cheap to try every family on a checkpoint and explain why each one does not fit.
"""

from __future__ import annotations

from collections.abc import Mapping

ShapeMap = Mapping[str, tuple[int, ...]]


class FamilyMismatch(ValueError):
    """The key set cannot belong to this family; the message says which key or shape disagrees."""


def shape_of(shapes: ShapeMap, key: str, ndim: int) -> tuple[int, ...]:
    """The shape stored under ``key``, which must exist with ``ndim`` dimensions."""
    if key not in shapes:
        raise FamilyMismatch(f"no key {key!r}")
    shape = shapes[key]
    if len(shape) != ndim:
        raise FamilyMismatch(f"{key!r} has shape {list(shape)}, expected {ndim} dimensions")
    return shape

"""Load generator checkpoints as the public codebases release them, and recognise their family.

Accepted: plain state_dicts (``torch.save(net.state_dict())``, what every family's original
code writes), dicts wrapping one (``{"state_dict": …}``, ``{"model": …}``, …), keys prefixed by
``module.`` (DataParallel) or ``_orig_mod.`` (``torch.compile``), and the legacy InstanceNorm
``running_mean`` / ``running_var`` / ``num_batches_tracked`` keys that checkpoints from PyTorch
< 0.4 carry — dropped, as the original loaders do. The family and its hyper-parameters are read
off the key names and shapes; the weights are then loaded with ``strict=True``.

Every failure is a :class:`CheckpointError` whose message a person can act on.
"""

from __future__ import annotations

import dataclasses
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from export.families import FAMILIES, FamilyMismatch, FamilySpec, ShapeMap
from export.families.normalization import BatchStats

# Wrapper entries that hold the generator in training frameworks' checkpoint dicts, most specific first.
WRAPPER_ENTRIES = ("state_dict", "model_state_dict", "generator", "netG", "G", "model", "params", "weights")
STRIPPED_PREFIXES = ("module.", "_orig_mod.")
LEGACY_NORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
_LISTED_KEYS = 8


class CheckpointError(Exception):
    """A checkpoint that cannot be exported; the message says why and what to do."""


class CheckpointNotFound(CheckpointError):
    """The path does not name a readable file."""


class CheckpointUnreadable(CheckpointError):
    """The file is not a PyTorch checkpoint, is truncated/corrupt, or holds no state_dict."""


@dataclass(frozen=True)
class KeyDiff:
    """How a checkpoint's ``{key: shape}`` differs from what a family's generator expects."""

    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    mismatched: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = ()
    """(key, checkpoint shape, expected shape)."""
    overlap: float = 0.0
    """Share of all keys (union) that both sides have: how close the checkpoint is to the family."""

    @property
    def clean(self) -> bool:
        """True when keys and shapes agree exactly."""
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self) -> str:
        """Indented lines listing the offending keys (a few of each kind, with counts)."""
        lines: list[str] = []
        for label, keys in (("missing keys", self.missing), ("unexpected keys", self.unexpected)):
            if keys:
                shown = ", ".join(keys[:_LISTED_KEYS]) + (", …" if len(keys) > _LISTED_KEYS else "")
                lines.append(f"  {label} ({len(keys)}): {shown}")
        if self.mismatched:
            shown = ", ".join(
                f"{key} is {list(got)} not {list(want)}" for key, got, want in self.mismatched[:_LISTED_KEYS]
            )
            lines.append(f"  shape mismatches ({len(self.mismatched)}): {shown}")
        return "\n".join(lines)


class KeyMismatch(CheckpointError):
    """The checkpoint's keys fit no family (or not the one asked for)."""

    def __init__(self, message: str, family: str | None, diff: KeyDiff | None) -> None:
        super().__init__(message)
        self.family = family
        """The requested family, or the closest one when none was requested."""
        self.diff = diff


@dataclass(frozen=True)
class ServingOptions:
    """Choices that change a generator's output but are not stored in its weights."""

    align_corners: bool = True
    """AnimeGANv2 decoder upsampling (see ``export.families.animegan``)."""
    batch_stats: BatchStats = "running"
    """Batch-norm checkpoints: stored running statistics, or each image's own (pix2pix ``test.py`` without ``--eval``)."""


@dataclass(frozen=True)
class StateDict:
    """Tensors read from a checkpoint file, and what was done to get them."""

    tensors: dict[str, Tensor]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoadedGenerator:
    """A generator with its checkpoint's weights, in eval mode, and what was learnt loading it."""

    module: nn.Module
    spec: FamilySpec
    config: Any
    source: Path | None = None
    dropped_keys: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def _is_tensor_dict(obj: object) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, Tensor) for v in obj.values())


def unwrap_state_dict(obj: object, entry: str | None = None) -> StateDict:
    """Find the state_dict inside what ``torch.load`` returned.

    ``entry`` names the wrapper key to use (e.g. ``"netG_A"``) when a file holds several.
    """
    if isinstance(obj, nn.Module):
        return StateDict(dict(obj.state_dict()), ("took the state_dict of a pickled nn.Module",))
    if not isinstance(obj, Mapping):
        raise CheckpointUnreadable(f"holds a {type(obj).__name__}, not a state_dict (a mapping of names to tensors)")
    if entry is not None:
        if entry not in obj:
            raise CheckpointUnreadable(f"has no entry {entry!r}; its entries are: {', '.join(map(str, obj))}")
        return dataclasses.replace(unwrap_state_dict(obj[entry]), notes=(f"used entry {entry!r}",))
    if _is_tensor_dict(obj):
        return StateDict({str(k): v for k, v in obj.items()})
    candidates = [str(k) for k, v in obj.items() if _is_tensor_dict(v)]
    preferred = [name for name in WRAPPER_ENTRIES if name in candidates]
    if len(candidates) == 1 or preferred:
        chosen = preferred[0] if preferred else candidates[0]
        return StateDict({str(k): v for k, v in obj[chosen].items()}, (f"used entry {chosen!r}",))
    if candidates:
        raise CheckpointUnreadable(f"holds several state_dicts ({', '.join(candidates)}); choose one with --entry")
    raise CheckpointUnreadable(
        f"holds no state_dict: its top-level entries are {', '.join(map(str, list(obj)[:_LISTED_KEYS]))}"
    )


def strip_prefixes(state: StateDict, prefix: str | None = None) -> StateDict:
    """Keep only keys under ``prefix`` (stripped), then strip wrapper prefixes every key shares."""
    tensors, notes = state.tensors, list(state.notes)
    if prefix:
        tensors = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        if not tensors:
            raise CheckpointUnreadable(f"no key starts with {prefix!r}")
        notes.append(f"kept keys under {prefix!r}")
    changed = True
    while changed:
        changed = False
        for common in STRIPPED_PREFIXES:
            if all(k.startswith(common) for k in tensors):
                tensors = {k[len(common) :]: v for k, v in tensors.items()}
                notes.append(f"stripped the {common!r} prefix")
                changed = True
    return StateDict(tensors, tuple(notes))


def read_state_dict(
    path: Path, entry: str | None = None, prefix: str | None = None, trust_pickle: bool = False
) -> StateDict:
    """Read a checkpoint file into a flat ``{key: tensor}``; never runs pickled code unless trusted."""
    path = Path(path)
    if not path.exists():
        raise CheckpointNotFound(f"{path}: no such file")
    if not path.is_file():
        raise CheckpointNotFound(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise CheckpointUnreadable(f"{path}: the file is empty")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as error:
        # The weights-only unpickler names the class it refused; anything else is a broken file.
        if "Unsupported global" in str(error):
            raise CheckpointUnreadable(
                f"{path}: holds pickled Python objects besides tensors, which are not loaded from untrusted "
                "files; re-save it as a state_dict, or pass --trust-pickle if you trust its source"
            ) from error
        raise CheckpointUnreadable(
            f"{path}: not a PyTorch checkpoint (the file is corrupt or of another format)"
        ) from error
    except EOFError as error:
        raise CheckpointUnreadable(f"{path}: truncated: the file ends before the checkpoint does") from error
    except (RuntimeError, zipfile.BadZipFile, ValueError, OSError, AttributeError, ModuleNotFoundError) as error:
        reason = str(error).split(". ")[0]
        raise CheckpointUnreadable(
            f"{path}: not a readable PyTorch checkpoint ({type(error).__name__}: {reason})"
        ) from error
    try:
        return strip_prefixes(unwrap_state_dict(obj, entry), prefix)
    except CheckpointUnreadable as error:
        raise CheckpointUnreadable(f"{path}: {error}") from error


def shapes_of(tensors: Mapping[str, Tensor]) -> dict[str, tuple[int, ...]]:
    """``{key: shape}`` of a state_dict."""
    return {k: tuple(v.shape) for k, v in tensors.items()}


def compare_keys(expected: ShapeMap, got: ShapeMap) -> KeyDiff:
    """Missing, unexpected and shape-mismatched keys of ``got`` against ``expected``."""
    missing = tuple(k for k in expected if k not in got)
    unexpected = tuple(k for k in got if k not in expected)
    mismatched = tuple((k, got[k], expected[k]) for k in expected if k in got and got[k] != expected[k])
    union = len(expected) + len(unexpected)
    overlap = (len(expected) - len(missing)) / union if union else 0.0
    return KeyDiff(missing, unexpected, mismatched, overlap)


def _skeleton(spec: FamilySpec, config: Any) -> nn.Module:
    # Built on the meta device: shapes without allocating (or randomly initialising) weights.
    with torch.device("meta"):
        return spec.build(config)


def _norm_owner(module: nn.Module, key: str) -> nn.Module | None:
    owner_name, _, buffer = key.rpartition(".")
    if buffer not in LEGACY_NORM_BUFFERS:
        return None
    try:
        return module.get_submodule(owner_name)
    except AttributeError:
        return None


def legacy_keys(module: nn.Module, keys: list[str]) -> list[str]:
    """Keys the original loaders drop: statistics buffers of InstanceNorm layers that track none."""
    legacy = []
    for key in keys:
        owner = _norm_owner(module, key)
        if isinstance(owner, nn.InstanceNorm2d) and not owner.track_running_stats:
            legacy.append(key)
    return legacy


def _missing_batch_counters(module: nn.Module, expected: ShapeMap, got: ShapeMap) -> list[str]:
    # PyTorch < 0.4.1 BatchNorm had no num_batches_tracked; PyTorch itself fills it in on load.
    return [
        key
        for key in expected
        if key.endswith(".num_batches_tracked")
        and key not in got
        and key.replace(".num_batches_tracked", ".running_mean") in got
        and isinstance(_norm_owner(module, key), nn.BatchNorm2d)
    ]


def _apply_options(config: Any, options: ServingOptions) -> Any:
    names = {f.name for f in dataclasses.fields(config)}
    chosen = {k: v for k, v in dataclasses.asdict(options).items() if k in names}
    return dataclasses.replace(config, **chosen)


@dataclass(frozen=True)
class FamilyMatch:
    """The outcome of fitting one family to a checkpoint's keys."""

    spec: FamilySpec
    config: Any
    diff: KeyDiff
    legacy: tuple[str, ...]
    filled: tuple[str, ...]
    reason: str = ""
    """Why detection failed, when it did (the diff is then against the family's default config)."""


def fit_family(spec: FamilySpec, shapes: ShapeMap, options: ServingOptions = ServingOptions()) -> FamilyMatch:
    """Detect ``spec``'s config from ``shapes`` and compare keys with the generator it builds."""
    reason = ""
    try:
        config = spec.detect(shapes)
    except FamilyMismatch as error:
        config, reason = spec.default_config, str(error)
    config = _apply_options(config, options)
    module = _skeleton(spec, config)
    expected = shapes_of(module.state_dict())
    legacy = tuple(legacy_keys(module, [k for k in shapes if k not in expected]))
    kept = {k: v for k, v in shapes.items() if k not in legacy}
    filled = tuple(_missing_batch_counters(module, expected, kept))
    kept.update({k: expected[k] for k in filled})
    return FamilyMatch(spec, config, compare_keys(expected, kept), legacy, filled, reason)


def detect_family(
    shapes: ShapeMap, family: str | None = None, options: ServingOptions = ServingOptions()
) -> FamilyMatch:
    """The family (and config) whose generator has exactly these keys and shapes.

    With ``family`` given only that family is tried. Raises :class:`KeyMismatch` naming the
    offending keys and the closest family when nothing fits.
    """
    if family is not None and family not in FAMILIES:
        raise CheckpointError(f"unknown family {family!r}; known families: {', '.join(FAMILIES)}")
    fits = [fit_family(spec, shapes, options) for spec in FAMILIES.values()]
    exact = [fit for fit in fits if fit.diff.clean]
    if family is not None:
        wanted = next(fit for fit in fits if fit.spec.name == family)
        if wanted.diff.clean:
            return wanted
        hint = (
            f"\nIts keys do match family {exact[0].spec.name!r}: drop --family or pass --family {exact[0].spec.name}."
            if exact
            else ""
        )
        raise KeyMismatch(
            f"checkpoint keys do not match family {family!r} ({wanted.spec.origin})"
            + (f": {wanted.reason}" if wanted.reason else "")
            + f"\n{wanted.diff.describe()}{hint}",
            family,
            wanted.diff,
        )
    if exact:
        return exact[0]
    closest = max(fits, key=lambda fit: fit.diff.overlap)
    if closest.diff.overlap == 0.0:
        sample = ", ".join(list(shapes)[:_LISTED_KEYS])
        raise KeyMismatch(
            f"not a generator of any known family ({', '.join(FAMILIES)}); its {len(shapes)} keys start: {sample}",
            None,
            None,
        )
    raise KeyMismatch(
        f"checkpoint keys match no generator family exactly; closest is {closest.spec.name!r} "
        f"({closest.diff.overlap:.0%} of keys in common; {closest.spec.origin})"
        + (f": {closest.reason}" if closest.reason else "")
        + f"\n{closest.diff.describe()}",
        closest.spec.name,
        closest.diff,
    )


def build_generator(
    state: StateDict, family: str | None = None, options: ServingOptions = ServingOptions()
) -> LoadedGenerator:
    """Detect the family of ``state`` and load its weights into a fresh generator (strict, eval mode)."""
    match = detect_family(shapes_of(state.tensors), family, options)
    tensors = {k: v for k, v in state.tensors.items() if k not in match.legacy}
    tensors.update({k: torch.tensor(0, dtype=torch.long) for k in match.filled})
    notes = list(state.notes)
    if any(v.is_floating_point() and v.dtype != torch.float32 for v in tensors.values()):
        notes.append("converted half-precision weights to float32")
    # Copies: an FP16 checkpoint becomes float32, and the module never aliases the caller's tensors.
    tensors = {k: (v.float() if v.is_floating_point() else v).clone() for k, v in tensors.items()}
    module = _skeleton(match.spec, match.config)
    module.load_state_dict(tensors, strict=True, assign=True)
    if match.legacy:
        notes.append(f"dropped {len(match.legacy)} legacy InstanceNorm statistics keys")
    if match.filled:
        notes.append(
            f"filled {len(match.filled)} BatchNorm num_batches_tracked counters missing from an old checkpoint"
        )
    return LoadedGenerator(module.eval(), match.spec, match.config, None, match.legacy, tuple(notes))


def load_generator(
    path: Path | str,
    family: str | None = None,
    *,
    options: ServingOptions = ServingOptions(),
    entry: str | None = None,
    prefix: str | None = None,
    trust_pickle: bool = False,
) -> LoadedGenerator:
    """Load a generator checkpoint, detecting its family and hyper-parameters unless ``family`` is given.

    Raises :class:`CheckpointError` (or a subclass) with a human-readable message on a bad
    path, an unreadable or corrupt file, or keys that fit no family.
    """
    path = Path(path)
    state = read_state_dict(path, entry=entry, prefix=prefix, trust_pickle=trust_pickle)
    try:
        loaded = build_generator(state, family, options)
    except CheckpointError as error:
        raise type(error)(f"{path}: {error}", *_extra_args(error)) from error
    return dataclasses.replace(loaded, source=path)


def _extra_args(error: CheckpointError) -> tuple[Any, ...]:
    return (error.family, error.diff) if isinstance(error, KeyMismatch) else ()


def save_state_dict(module: nn.Module, path: Path | str) -> Path:
    """Save ``module``'s weights the way the original codebases do: a plain ``torch.save``'d state_dict."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(module.state_dict(), path)
    return path

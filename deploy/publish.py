"""Publishing a style version safely: write, load, smoke-test, and roll back on any failure.

The model's ``config.pbtxt`` holds the truth about what serves: its ``version_policy`` is
``specific { versions: [previous, live] }``. The newest listed version answers unpinned
requests (it is *live*); the previous one stays loaded so a rollout or rollback never leaves a
moment without a ready version. Each version folder also holds ``publish.json`` (precision,
gates, checksum, source), which Triton ignores.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from deploy.artifact import SMOKE_TOLERANCE, Artifact, golden_images, onnx_outputs
from deploy.model_store import ModelStore
from deploy.repository import ServingPolicy, Target, build_config, parse_config, render_config, served_versions, version_files
from deploy.triton_control import TritonControl, TritonUnavailable
from pastiche.contract import INTERNAL_MODEL_PREFIX, StyleMetadata

STYLE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MANIFEST = "publish.json"


class PublishError(RuntimeError):
    """A publish, rollback or retire did not happen; the message is the reason for the user."""


@dataclass(frozen=True)
class SmokeResult:
    """How Triton's answers on the golden images compare with the in-process reference."""

    max_difference: int
    tolerance: int
    answered_by: int

    @property
    def passed(self) -> bool:
        return self.max_difference <= self.tolerance


@dataclass(frozen=True)
class PublishResult:
    style: str
    version: int
    previous: int | None
    smoke: SmokeResult


@dataclass(frozen=True)
class VersionInfo:
    """One version as ``pastiche models list`` shows it."""

    version: int
    live: bool
    loaded: str
    precision: str
    gates: dict[str, str] = field(default_factory=dict)


def check_style_name(style: str) -> None:
    """Style names become Triton model names and S3/path components."""
    if not STYLE_NAME.match(style):
        raise PublishError(f"style name must match {STYLE_NAME.pattern} (lowercase, digits, - _ .), got {style!r}")


def compare(served: np.ndarray, reference: np.ndarray, tolerance: int, answered_by: int) -> SmokeResult:
    """Largest per-pixel difference between Triton's output and the reference."""
    if served.shape != reference.shape:
        return SmokeResult(255, tolerance, answered_by)
    difference = int(np.abs(served.astype(np.int16) - reference.astype(np.int16)).max())
    return SmokeResult(difference, tolerance, answered_by)


def manifest_for(artifact: Artifact, version: int) -> bytes:
    """``publish.json`` content for a version."""
    body = {
        "version": version,
        "precision": artifact.precision,
        "gates": artifact.gates,
        "sha256": artifact.sha256(),
        "source": artifact.source,
        "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return json.dumps(body, indent=2, sort_keys=True).encode()


def read_manifest(store: ModelStore, style: str, version: int) -> dict:
    raw = store.read(f"{style}/{version}/{MANIFEST}")
    return json.loads(raw) if raw else {}


def current_config(store: ModelStore, style: str) -> tuple[bytes | None, list[int]]:
    """Raw ``config.pbtxt`` (or ``None``) and the versions its policy serves."""
    raw = store.read(f"{style}/config.pbtxt")
    if raw is None:
        return None, []
    return raw, served_versions(parse_config(raw.decode()), store.versions(style))


def _config_bytes(style: str, metadata: StyleMetadata, target: Target, policy: ServingPolicy, versions: tuple[int, ...]) -> bytes:
    return render_config(build_config(style, metadata, target, policy, versions)).encode()


def _smoke(triton: TritonControl, style: str, version: int, images: np.ndarray, reference: np.ndarray, tolerance: int) -> SmokeResult:
    served, answered_by = triton.infer(style, images, version)
    result = compare(served, reference, tolerance, answered_by)
    if not result.passed:
        raise PublishError(
            f"smoke test failed: version {version} differs from the gated reference by "
            f"{result.max_difference} levels on the golden images (tolerance {tolerance})"
        )
    return result


def publish(
    artifact: Artifact,
    style: str,
    store: ModelStore,
    triton: TritonControl,
    target: Target = Target.LOCAL,
    policy: ServingPolicy = ServingPolicy(),
    tolerance: int | None = None,
    after_write: Callable[[str], None] | None = None,
    lock_timeout: float = 600.0,
) -> PublishResult:
    """Write ``artifact`` as the next version of ``style``, load it, smoke-test it, keep it or undo.

    On any failure the new version is unloaded and deleted, the previous config is restored and
    reloaded (so the previous version stays live), and :class:`PublishError` says why.
    The candidate is first loaded and smoke-tested as a separate staging model, so no request
    reaches an untested version. ``after_write(prefix)`` runs after each version folder is written
    (staging, then final), before its load; tests corrupt files there.
    """
    check_style_name(style)
    if target is Target.GPU:
        raise PublishError("the gpu target serves TensorRT plans built on the serving GPU; publish --target onnx or local")
    triton.check_live()
    tolerance = SMOKE_TOLERANCE[artifact.precision] if tolerance is None else tolerance
    images = golden_images(artifact.metadata.size_multiple)
    reference = onnx_outputs(artifact.onnx_path, images)
    files = version_files(target, artifact.onnx_path.read_bytes())
    with store.lock(style, lock_timeout):
        _stage(artifact, style, store, triton, target, policy, files, images, reference, tolerance, after_write)
        old_config, served = current_config(store, style)
        previous = served[-1] if served else None
        version = (store.versions(style) or [0])[-1] + 1
        keep = (previous,) if previous is not None else ()
        for filename, data in files.items():
            store.write(f"{style}/{version}/{filename}", data)
        store.write(f"{style}/{version}/{MANIFEST}", manifest_for(artifact, version))
        if after_write is not None:
            after_write(f"{style}/{version}")
        store.write(f"{style}/config.pbtxt", _config_bytes(style, artifact.metadata, target, policy, (*keep, version)))
        try:
            triton.load(style)
            if not triton.is_ready(style, version):
                raise PublishError(f"version {version} did not become ready")
            smoke = _smoke(triton, style, version, images, reference, tolerance)
            _, default_version = triton.infer(style, images[:1])
            if default_version != version:
                raise PublishError(f"unpinned requests still reach version {default_version}, not {version}")
        except Exception as error:  # load, readiness, inference or comparison: every failure undoes
            _undo(store, triton, style, version, old_config)
            raise PublishError(f"publish of {style} version {version} rolled back: {error}") from None
    return PublishResult(style, version, previous, smoke)


def staging_name(style: str) -> str:
    """Model name of a style's candidate under test: internal, so the gateway never lists it."""
    return f"{INTERNAL_MODEL_PREFIX}staging.{style}"


def _stage(
    artifact: Artifact,
    style: str,
    store: ModelStore,
    triton: TritonControl,
    target: Target,
    policy: ServingPolicy,
    files: dict[str, bytes],
    images: np.ndarray,
    reference: np.ndarray,
    tolerance: int,
    after_write: Callable[[str], None] | None,
) -> SmokeResult:
    """Load the candidate as a separate staging model and smoke-test it before any traffic can reach it."""
    name = staging_name(style)
    store.delete_tree(name)
    for filename, data in files.items():
        store.write(f"{name}/1/{filename}", data)
    if after_write is not None:
        after_write(f"{name}/1")
    store.write(f"{name}/config.pbtxt", _config_bytes(name, artifact.metadata, target, policy, (1,)))
    try:
        triton.load(name)
        return _smoke(triton, name, 1, images, reference, tolerance)
    except Exception as error:  # nothing of the live style was touched: report and clean up
        raise PublishError(f"candidate for {style} rejected before going live: {error}") from None
    finally:
        try:
            triton.unload(name)
        finally:
            store.delete_tree(name)


def _undo(store: ModelStore, triton: TritonControl, style: str, version: int, old_config: bytes | None) -> None:
    """Restore the previous config and versions after a failed publish."""
    if old_config is None:
        try:
            triton.unload(style)
        finally:
            store.delete_tree(style)
        return
    store.write(f"{style}/config.pbtxt", old_config)
    try:
        triton.load(style)
    finally:
        store.delete_tree(f"{style}/{version}")


def _require_style(store: ModelStore, style: str) -> tuple[bytes, list[int]]:
    raw, served = current_config(store, style)
    if raw is None:
        known = ", ".join(store.styles()) or "none"
        raise PublishError(f"unknown style '{style}' in {store.triton_location()} (known: {known})")
    return raw, served


def _rewrite_versions(store: ModelStore, style: str, raw: bytes, versions: tuple[int, ...]) -> bytes:
    config = parse_config(raw.decode())
    config.version_policy.Clear()
    config.version_policy.specific.versions.extend(sorted(set(versions)))
    return render_config(config).encode()


def rollback(style: str, store: ModelStore, triton: TritonControl) -> int:
    """Make the version before the live one live again; returns it. The live one stays on disk."""
    check_style_name(style)
    triton.check_live()
    with store.lock(style):
        raw, served = _require_style(store, style)
        live = served[-1] if served else None
        earlier = [v for v in store.versions(style) if live is None or v < live]
        if not earlier:
            raise PublishError(f"'{style}' has no version older than the live version {live} to roll back to")
        target = earlier[-1]
        keep = (earlier[-2],) if len(earlier) > 1 else ()
        store.write(f"{style}/config.pbtxt", _rewrite_versions(store, style, raw, (*keep, target)))
        try:
            triton.load(style)
        except TritonUnavailable as error:
            store.write(f"{style}/config.pbtxt", raw)
            triton.load(style)
            raise PublishError(f"rollback of '{style}' to version {target} failed, version {live} stays live: {error}") from None
        return target


def retire(style: str, version: int, store: ModelStore, triton: TritonControl) -> None:
    """Unload and delete a version that is not live."""
    check_style_name(style)
    triton.check_live()
    with store.lock(style):
        raw, served = _require_style(store, style)
        if version not in store.versions(style):
            raise PublishError(f"'{style}' has no version {version} (versions: {store.versions(style)})")
        if served and version == served[-1]:
            raise PublishError(f"version {version} is live for '{style}'; roll back or publish a newer version before retiring it")
        if version in served:
            store.write(f"{style}/config.pbtxt", _rewrite_versions(store, style, raw, tuple(v for v in served if v != version)))
            triton.load(style)
        store.delete_tree(f"{style}/{version}")


def list_models(store: ModelStore, triton: TritonControl | None) -> dict[str, list[VersionInfo]]:
    """Every style with its versions, which is live, Triton's load state, precision and gates."""
    listing = {}
    for style in store.styles():
        _, served = current_config(store, style)
        live = served[-1] if served else None
        try:
            states = triton.version_states(style) if triton else {}
        except TritonUnavailable:
            states = {}
        rows = []
        for version in store.versions(style):
            manifest = read_manifest(store, style, version)
            state = states.get(version)
            rows.append(
                VersionInfo(
                    version=version,
                    live=version == live,
                    loaded=state.state if state else ("unknown" if triton is None else "not loaded"),
                    precision=manifest.get("precision", "?"),
                    gates=manifest.get("gates", {}),
                )
            )
        listing[style] = rows
    return listing


"""Pipeline pieces that need no export: output directory hygiene and metadata derivation."""

from __future__ import annotations

from pathlib import Path

import pytest

from export.checkpoint import LoadedGenerator
from export.families import FAMILIES
from export.parity import default_parity_shapes
from export.pipeline import ExportFailed, ExportSettings, _prepare_directory, style_metadata
from tests.export.generators import tiny_generator


def test_stale_outputs_are_removed_and_other_files_kept(tmp_path: Path) -> None:
    for name in ("model.onnx", "model.int8.onnx", "report.json"):
        (tmp_path / name).write_text("old")
    (tmp_path / "rejected").mkdir()
    (tmp_path / "rejected" / "model.fp16.onnx").write_text("old")
    (tmp_path / "notes.txt").write_text("mine")
    _prepare_directory(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def _loaded(family: str, source: Path | None = None) -> LoadedGenerator:
    spec = FAMILIES[family]
    return LoadedGenerator(tiny_generator(family), spec, spec.default_config, source)


def test_metadata_comes_from_the_family_and_the_settings() -> None:
    metadata = style_metadata(_loaded("unet_256", Path("facades_label2photo.pth")), ExportSettings(max_side=1000))
    assert metadata.title == "facades_label2photo"
    assert (metadata.architecture, metadata.size_multiple, metadata.preferred_side) == ("unet_256", 256, 256)
    assert metadata.max_side == 768  # rounded down to the size multiple
    assert metadata.precision == "fp32"


def test_max_side_below_the_preferred_side_is_refused() -> None:
    with pytest.raises(ExportFailed, match="below the family's preferred side 512"):
        style_metadata(_loaded("resnet"), ExportSettings(max_side=300))


@pytest.mark.parametrize("multiple", [4, 128, 256])
def test_parity_covers_two_resolutions_and_two_batch_sizes(multiple: int) -> None:
    shapes = default_parity_shapes(multiple)
    assert len({(h, w) for h, w, _ in shapes}) == 2 and {b for _, _, b in shapes} == {1, 2}
    assert all(h % multiple == 0 and w % multiple == 0 for h, w, _ in shapes)

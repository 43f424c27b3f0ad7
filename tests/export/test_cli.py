"""`pastiche export` end to end: every family from its original checkpoint format to gated variants."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from typer.testing import CliRunner

from export.checkpoint import ServingOptions, load_generator
from export.latency import cpu_session
from export.onnx_export import read_metadata, torch_reference
from export.photos import batch_of, evaluation_photos
from pastiche.cli import app
from pastiche.contract import INPUT_NAME
from tests.export.generators import TINY_CONFIGS, CliExport

FAMILY_NAMES = list(TINY_CONFIGS)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_export_detects_the_family_and_passes_parity(cli_export: Callable[[str], CliExport], family: str) -> None:
    run = cli_export(family)
    assert run.exit_code in (0, 3), run.output
    report = run.report
    assert report["checkpoint"]["family"] == family
    assert report["parity"]["passed"]
    cases = report["parity"]["cases"]
    assert len({(c["height"], c["width"]) for c in cases}) >= 2 and len({c["batch"] for c in cases}) >= 2
    assert all(c["max_abs_diff"] <= 1 for c in cases)
    assert report["graph"]["opset"] == 18 and "Conv" in report["graph"]["operators"]


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_exported_model_matches_the_original_checkpoint_in_pytorch(
    cli_export: Callable[[str], CliExport], family: str
) -> None:
    run = cli_export(family)
    loaded = load_generator(run.checkpoint, options=_options(run))
    side = loaded.spec.size_multiple if loaded.spec.size_multiple > 4 else 96
    images = batch_of(evaluation_photos(2), side)
    got = cpu_session(run.out / "model.onnx").run(None, {INPUT_NAME: images})[0]
    expected = torch_reference(loaded.module, loaded.spec.value_range, images)
    assert got.dtype == np.uint8 and got.shape == images.shape
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def _options(run: CliExport) -> ServingOptions:
    config = run.report["checkpoint"]["config"]
    return ServingOptions(
        align_corners=config.get("align_corners", True), batch_stats=config.get("batch_stats", "running")
    )


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_variants_are_gated_and_published_only_when_they_pass(
    cli_export: Callable[[str], CliExport], family: str
) -> None:
    run = cli_export(family)
    variants = {v["precision"]: v for v in run.report["variants"]}
    assert set(variants) == {"fp32", "fp16", "int8"}
    for precision in ("fp16", "int8"):
        variant = variants[precision]
        assert variant["gates"], precision
        passed = all(gate["passed"] for gate in variant["gates"])
        assert variant["publishable"] == passed
        name = f"model.{precision}.onnx"
        assert variant["file"] == (name if passed else f"rejected/{name}")
        assert (run.out / variant["file"]).is_file()
        assert (run.out / name).exists() == passed
        assert read_metadata(run.out / variant["file"]).precision == precision
        assert len(variant["images"]) == 3 and variant["psnr"]["min"] <= variant["psnr"]["mean"]
        assert variant["latency"]["side"] == max(64, int(run.report["metadata"]["size_multiple"]))
        assert variant["size_bytes"] == (run.out / variant["file"]).stat().st_size


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_size_constraints_and_preferred_side_are_in_the_metadata(
    cli_export: Callable[[str], CliExport], family: str
) -> None:
    from export.families import FAMILIES

    run = cli_export(family)
    metadata = read_metadata(run.out / "model.onnx")
    spec = FAMILIES[family]
    assert (metadata.architecture, metadata.size_multiple, metadata.preferred_side) == (
        family,
        spec.size_multiple,
        spec.preferred_side,
    )
    assert metadata.max_side % spec.size_multiple == 0


def test_failed_gate_rejects_the_variant_and_reports_the_shortfall(cli_export: Callable[[str], CliExport]) -> None:
    run = cli_export("resnet")
    assert run.exit_code == 3, run.output  # --strict
    int8 = next(v for v in run.report["variants"] if v["precision"] == "int8")
    assert not int8["publishable"]
    psnr_gate = next(g for g in int8["gates"] if g["metric"] == "psnr")
    assert psnr_gate["threshold"] == 99 and psnr_gate["margin"] == pytest.approx(psnr_gate["measured"] - 99)
    assert "int8 not published" in run.output
    summary = (run.out / "report.md").read_text()
    assert "REJECTED: PSNR" in summary and "short by" in summary


def test_report_files_and_summary(cli_export: Callable[[str], CliExport]) -> None:
    run = cli_export("transformer_net")
    assert run.exit_code == 0, run.output
    for name in ("report.json", "report.md", "comparison.png", "calibration.json"):
        assert (run.out / name).is_file(), name
    report = run.report
    assert report["metadata"]["title"] == "Candy" and report["metadata"]["description"] == "Johnson candy"
    assert report["calibration"]["method"] == "minmax"
    assert not set(report["calibration"]["photos"]) & set(report["evaluation"]["photos"])
    assert sorted(report["checkpoint"]["dropped_keys"]) == sorted(
        k for k in torch.load(run.checkpoint, weights_only=True) if k.endswith("running_mean")
    )
    assert report["machine"]["cpus"] >= 1
    summary = (run.out / "report.md").read_text()
    assert "## FP32 parity with PyTorch (tolerance 1 level): passed" in summary
    assert "| int8 |" in summary and "| fp16 |" in summary
    assert "Candy (transformer_net)" in run.output


def test_loading_notes_reach_the_report(cli_export: Callable[[str], CliExport]) -> None:
    assert "stripped the 'module.' prefix" in cli_export("resnet").report["checkpoint"]["notes"]
    assert cli_export("unet_256").report["checkpoint"]["config"]["batch_stats"] == "per_image"
    animegan = cli_export("animegan").report
    assert animegan["checkpoint"]["config"] == {"align_corners": False}
    assert animegan["calibration"]["method"] == "percentile"


def test_engines_are_planned_without_a_gpu(cli_export: Callable[[str], CliExport]) -> None:
    run = cli_export("resnet")
    engines = run.report["engines"]
    published = [v["precision"] for v in run.report["variants"] if v["publishable"]]
    assert [e["precision"] for e in engines] == published
    assert all(not e["built"] and e["reason"] for e in engines)
    script = (run.out / "engines" / "build_engines.sh").read_text()
    assert all(e["command"].split(" ", 1)[1] in script for e in engines)


def test_fp16_keeps_normalization_in_fp32(cli_export: Callable[[str], CliExport]) -> None:
    run = cli_export("unet_128")
    fp16 = next(v for v in run.report["variants"] if v["precision"] == "fp16")
    assert "InstanceNormalization" in fp16["details"]["kept_ops"]
    model = onnx.load(run.out / fp16["file"])
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer)


def _invoke(*arguments: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["export", *arguments])
    return result.exit_code, result.output


def test_missing_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    code, output = _invoke(str(tmp_path / "missing.pth"), "--out", str(tmp_path / "out"))
    assert code == 2
    assert "error:" in output and "no such file" in output
    assert not (tmp_path / "out").exists()


def test_corrupt_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "latest_net_G.pth"
    path.write_bytes(b"\x80\x04garbage that is not a checkpoint")
    code, output = _invoke(str(path), "--out", str(tmp_path / "out"))
    assert code == 2 and "not a PyTorch checkpoint" in output


def test_non_generator_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "discriminator.pth"
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 4), torch.nn.Conv2d(8, 1, 4)).state_dict(), path)
    code, output = _invoke(str(path), "--out", str(tmp_path / "out"))
    assert code == 2 and "not a generator of any known family" in output


def test_wrong_keys_fail_with_the_offending_keys(tmp_path: Path) -> None:
    from tests.export.generators import tiny_generator

    state = tiny_generator("transformer_net").state_dict()
    state["res6.conv1.conv2d.weight"] = state.pop("res5.conv1.conv2d.weight")
    path = tmp_path / "mosaic.pth"
    torch.save(state, path)
    code, output = _invoke(str(path), "--out", str(tmp_path / "out"))
    assert code == 2
    assert "closest is 'transformer_net'" in output
    assert "res5.conv1.conv2d.weight" in output and "res6.conv1.conv2d.weight" in output


def test_unknown_family_is_a_clear_error(tmp_path: Path) -> None:
    from tests.export.generators import save_original, tiny_generator

    path = save_original(tiny_generator("resnet"), tmp_path / "g.pth")
    code, output = _invoke(str(path), "--out", str(tmp_path / "out"), "--family", "cyclegan")
    assert code == 2 and "unknown family 'cyclegan'" in output


def test_report_json_is_valid_json_with_infinite_psnr_as_strings(cli_export: Callable[[str], CliExport]) -> None:
    text = (cli_export("unet_256").out / "report.json").read_text()
    assert "NaN" not in text
    json.loads(text)


def test_evaluation_images_must_be_held_out(tmp_path: Path) -> None:
    from tests.export.generators import save_original, tiny_generator

    path = save_original(tiny_generator("resnet"), tmp_path / "g.pth")
    photos = tmp_path / "photos"
    photos.mkdir()
    code, output = _invoke(
        str(path), "--out", str(tmp_path / "out"), "--eval-dir", str(photos), "--calibration-dir", str(photos)
    )
    assert code == 2 and "must differ" in output

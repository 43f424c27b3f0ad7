"""The full sweep, one run, side by side: batching, instances, precision, resolution, layers, ceiling, harness.

Every Triton configuration is its own model in one repository served by one bundled Triton,
so all phases hit the same server process, the same images and the same weights, one after
another, and ratios between them hold even on a machine whose absolute speed drifts.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from benchmarks import ceiling, inprocess, perf_analyzer
from benchmarks.locust_run import LoadPhase
from benchmarks.photos import load_photos
from benchmarks.report import PhaseResult, markdown_table
from benchmarks.runner import RunContext
from benchmarks.scenarios import endpoints
from deploy.repository import ServingPolicy, Target, build_config, render_config, write_model
from export.families import RESNET, build_seeded_resnet
from export.photos import calibration_photos
from export.quantize import QuantizeSettings, quantize_int8
from pastiche.contract import StyleMetadata

EXPORT_CACHE = Path(".pastiche/bench-exports")


@dataclass(frozen=True)
class SweepSettings:
    """The sweep's model and grid; the defaults are what the committed report used."""

    ngf: int = 16
    n_blocks: int = 6
    side: int = 256
    buckets: tuple[int, ...] = (128, 256, 384)
    delays_us: tuple[int, ...] = (1000, 5000, 20000)
    reference_delay_us: int = 5000
    max_instances: int = 2
    concurrency: int = 4
    duration_s: float = 20.0
    inprocess_s: float = 10.0


@dataclass(frozen=True)
class Variant:
    """One Triton model of the sweep."""

    name: str
    precision: str
    policy: ServingPolicy
    batching: bool = True


def variants(settings: SweepSettings) -> list[Variant]:
    """Batching off, batching on at each delay, 2..N instances, INT8, ORT thread spinning — all else equal."""
    cores = os.cpu_count() or 1
    found = [Variant("sweep-nobatch", "fp32", ServingPolicy(max_queue_delay_us=0), batching=False)]
    found += [Variant(f"sweep-d{d}", "fp32", ServingPolicy(max_queue_delay_us=d)) for d in settings.delays_us]
    for count in range(2, settings.max_instances + 1):
        # Instances split the cores between them, so the sweep compares layouts, not oversubscription.
        threads = str(max(1, cores // count))
        found.append(Variant(f"sweep-i{count}", "fp32", ServingPolicy(
            max_queue_delay_us=settings.reference_delay_us, instance_count=count,
            backend_parameters={"intra_op_threads": threads})))
    found.append(Variant("sweep-int8", "int8", ServingPolicy(max_queue_delay_us=settings.reference_delay_us)))
    found.append(Variant("sweep-spin", "fp32", ServingPolicy(
        max_queue_delay_us=settings.reference_delay_us, backend_parameters={"intra_op_spinning": "1"})))
    return found


def variant_config_text(variant: Variant, metadata: StyleMetadata) -> str:
    """``config.pbtxt`` of a variant: the repository builder's config, minus dynamic batching when off."""
    config = build_config(variant.name, metadata, Target.LOCAL, variant.policy)
    if not variant.batching:
        config.ClearField("dynamic_batching")
    return render_config(config)


def style_metadata(settings: SweepSettings, precision: str) -> StyleMetadata:
    return StyleMetadata(
        title=f"Sweep ResNet ngf={settings.ngf} blocks={settings.n_blocks} ({precision})",
        description="Seeded CycleGAN ResNet generator used by the benchmark sweep.",
        architecture=RESNET.name, precision=precision, size_multiple=RESNET.size_multiple,
        preferred_side=RESNET.preferred_side,
    )


def export_models(settings: SweepSettings) -> tuple[Path, Path]:
    """FP32 ONNX of the sweep model and its INT8 QDQ twin (cached by width and depth)."""
    from export.onnx_export import export_onnx

    EXPORT_CACHE.mkdir(parents=True, exist_ok=True)
    stem = EXPORT_CACHE / f"sweep-resnet-ngf{settings.ngf}-b{settings.n_blocks}-seed0"
    fp32, int8 = stem.with_suffix(".fp32.onnx"), stem.with_suffix(f".int8-{settings.side}.onnx")
    if not fp32.exists():
        tmp = stem.with_suffix(".tmp.onnx")
        export_onnx(build_seeded_resnet(settings.ngf, settings.n_blocks, seed=0), RESNET.value_range, tmp,
                    style_metadata(settings, "fp32"))
        tmp.rename(fp32)
    if not int8.exists():
        # The export stage's INT8 path and calibration split, so the sweep measures what `pastiche export` ships.
        quantize_int8(fp32, int8, calibration_photos(), QuantizeSettings(side=settings.side))
    return fp32, int8


def write_repository(repository: Path, settings: SweepSettings, fp32: Path, int8: Path) -> None:
    """Every variant as version 1 of its own model."""
    for variant in variants(settings):
        metadata = style_metadata(settings, variant.precision)
        source = int8 if variant.precision == "int8" else fp32
        write_model(repository, variant.name, source, metadata, Target.LOCAL, variant.policy, version=1)
        (repository / variant.name / "config.pbtxt").write_text(variant_config_text(variant, metadata))


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator is not None and denominator else None


def phase_row(label: str, result: PhaseResult, **extra: object) -> dict[str, object]:
    t = result.triton
    return {
        "config": label, "images/s": result.locust.rps, "p50 ms": result.locust.p50_ms, "p99 ms": result.locust.p99_ms,
        "avg batch": t.avg_batch_size if t else None, "queue ms": t.avg_queue_ms if t else None,
        "compute ms": t.avg_compute_ms if t else None, **extra,
    }


PHASE_COLUMNS = ["config", "images/s", "p50 ms", "p99 ms", "avg batch", "queue ms", "compute ms"]


def sweep(context: RunContext) -> None:
    """Run the whole sweep and add its tables to the report."""
    options = context.options
    settings = SweepSettings()
    settings = replace(settings, duration_s=options.duration_s or settings.duration_s,
                       concurrency=options.users or settings.concurrency)
    console, report = context.console, context.report
    c = settings.concurrency
    report.notes.append(
        f"Sweep model: CycleGAN ResNet generator, ngf={settings.ngf}, {settings.n_blocks} residual blocks, seeded "
        f"random weights, uint8 NHWC, {settings.side}x{settings.side} unless stated; served by Triton's python "
        "backend running ONNX Runtime (CPU). Chosen so every phase completes enough requests on 2 shared cores; "
        "ngf=32 costs 4x the FLOPs.")
    report.notes.append(
        f"Load: closed loop, {c} concurrent Locust gRPC users, {settings.duration_s:g} s per phase, unless stated; "
        "one open-loop phase (constant pacing) is marked as such.")

    with console.status("exporting the sweep model (FP32) and quantizing it (INT8)"):
        fp32, int8 = export_models(settings)
    photo = load_photos((settings.side,))[0].pixels

    with console.status("counting FLOPs and measuring SGEMM"):
        flops = ceiling.count_flops(fp32, settings.side)
        sgemm = {"numpy": ceiling.sgemm_gflops(backend="numpy"), "torch": ceiling.sgemm_gflops(backend="torch")}
    best_sgemm = max(sgemm.values())

    with console.status("in-process baselines: PyTorch eager, ONNX Runtime FP32 and INT8"):
        eager = inprocess.torch_eager(build_seeded_resnet(settings.ngf, settings.n_blocks, seed=0), RESNET.value_range,
                                      photo, settings.inprocess_s)
        ort_fp32 = inprocess.onnxruntime_session(fp32, photo, settings.inprocess_s)
        ort_int8 = inprocess.onnxruntime_session(int8, photo, settings.inprocess_s)

    def build(repository: Path) -> None:
        write_repository(repository, settings, fp32, int8)

    reference = f"sweep-d{settings.reference_delay_us}"
    with endpoints(context, build) as ep:
        grpc_url, metrics = ep.triton_grpc, ep.triton_metrics

        def grpc_phase(model: str, group: str, label: str, users: int = c, sides: tuple[int, ...] = (settings.side,),
                       rate: float = 0.0, name: str | None = None) -> PhaseResult:
            phase = LoadPhase(name or f"{group}-{model}-{'x'.join(map(str, sides))}-u{users}", "grpc", grpc_url, model,
                              users, settings.duration_s, image_sides=sides, rate=rate)
            return context.run_phase(phase, group, label, metrics, model)

        batching = {"off": grpc_phase("sweep-nobatch", "batching", "off")}
        for delay in settings.delays_us:
            batching[f"{delay} µs"] = grpc_phase(f"sweep-d{delay}", "batching", f"delay {delay} µs")
        ref = batching[f"{settings.reference_delay_us} µs"]
        instances = {1: ref}
        for count in range(2, settings.max_instances + 1):
            instances[count] = grpc_phase(f"sweep-i{count}", "instances", f"{count} instances")
        int8_phase = grpc_phase("sweep-int8", "precision", "INT8")
        spin_phase = grpc_phase("sweep-spin", "threads", "ORT spinning on")
        buckets = {settings.side: ref}
        for side in settings.buckets:
            if side != settings.side:
                buckets[side] = grpc_phase(reference, "resolution", f"{side}px", sides=(side,))
        triton_c1 = grpc_phase(reference, "layers", "Triton gRPC, 1 user", users=1)
        gateway_c1 = context.run_phase(
            LoadPhase(f"layers-gateway-{reference}-u1", "gateway", ep.gateway or "", reference, 1, settings.duration_s,
                      image_sides=(settings.side,), cache_bust=True, api_key=options.api_key),
            "layers", "gateway, 1 user", metrics, reference)
        locust_harness = grpc_phase(reference, "harness", f"Locust gRPC, {c} users", name=f"harness-locust-u{c}")
        perf = None
        try:
            with console.status(f"perf_analyzer at concurrency {c}"):
                perf = perf_analyzer.run(options.perf_venv, grpc_url or "", reference, c, settings.side,
                                         context.out_dir, window_ms=int(settings.duration_s * 1000 / 2))
        except (perf_analyzer.PerfAnalyzerMissing, RuntimeError) as error:
            report.notes.append(f"perf_analyzer comparison skipped: {str(error).splitlines()[0]}")
        open_rate = round(0.7 * ref.locust.rps, 1)
        open_phase = grpc_phase(reference, "open loop", f"{open_rate:g}/s paced", users=2 * c, rate=open_rate,
                                name="open-loop")

    # ---- tables ----
    batch_rows = [phase_row(label, result) for label, result in batching.items()]
    report.sections.append(("Dynamic batching off vs on", (
        f"Model `sweep-*`, {c} concurrent gRPC users, {settings.side}px. \"off\" has no `dynamic_batching` block; "
        "the others batch up to 8 with the given `max_queue_delay_microseconds`.\n\n"
        + markdown_table(batch_rows, PHASE_COLUMNS)
        + f"\n\nImages/s with batching on ({settings.reference_delay_us} µs) ÷ off: "
        f"**{ratio(ref.locust.rps, batching['off'].locust.rps):.2f}x**.")))
    report.sections.append(("ONNX Runtime thread spinning", (
        f"Batching on ({settings.reference_delay_us} µs). The served default turns ONNX Runtime's intra-op spinning off "
        "(`intra_op_spinning` model parameter); \"on\" is ONNX Runtime's own default.\n\n"
        + markdown_table([phase_row("off (served default)", ref), phase_row("on", spin_phase)], PHASE_COLUMNS)
        + f"\n\np99 with spinning on ÷ off: **{ratio(spin_phase.locust.p99_ms, ref.locust.p99_ms):.2f}x**; images/s "
        f"on ÷ off: **{ratio(spin_phase.locust.rps, ref.locust.rps):.2f}x**.")))
    instance_rows = [phase_row(f"{n} instance(s)", r) for n, r in instances.items()]
    report.sections.append(("Instance count", (
        f"Batching on ({settings.reference_delay_us} µs). One instance lets ONNX Runtime use every core; N instances "
        "get cores ÷ N intra-op threads each.\n\n" + markdown_table(instance_rows, PHASE_COLUMNS))))
    speedup_triton = ratio(int8_phase.locust.rps, ref.locust.rps)
    speedup_ort = ratio(ort_fp32.p50_ms, ort_int8.p50_ms)
    report.sections.append(("Precision: FP32 vs INT8 (CPU)", (
        "INT8 is the export stage's variant (`export/quantize.py`: ONNX Runtime static quantization, QDQ, "
        "symmetric int8 activations and per-channel weights, percentile calibration on the calibration photos of "
        "`export/photos.py`, first and last convolutions kept FP32). FP16/INT8 TensorRT needs a GPU and is not "
        "measured here.\n\n"
        + markdown_table([phase_row("FP32", ref), phase_row("INT8", int8_phase)], PHASE_COLUMNS)
        + f"\n\nINT8 ÷ FP32 images/s through Triton: **{speedup_triton:.2f}x**; in-process ONNX Runtime single-image "
        f"p50 {ort_fp32.p50_ms:.0f} ms → {ort_int8.p50_ms:.0f} ms: **{speedup_ort:.2f}x**.")))
    bucket_rows = [phase_row(f"{side}x{side}", r, **{"Mpixel/s": r.locust.rps * side * side / 1e6})
                   for side, r in sorted(buckets.items())]
    report.sections.append(("Resolution buckets", (
        f"Batching on ({settings.reference_delay_us} µs), {c} users; requests of one size only per phase.\n\n"
        + markdown_table(bucket_rows, [*PHASE_COLUMNS, "Mpixel/s"]))))

    layers = [
        {"layer": "PyTorch eager (in-process)", "images/s": eager.images_per_s, "p50 ms": eager.p50_ms, "p99 ms": eager.p99_ms},
        {"layer": "ONNX Runtime (in-process)", "images/s": ort_fp32.images_per_s, "p50 ms": ort_fp32.p50_ms, "p99 ms": ort_fp32.p99_ms},
        {"layer": "Triton gRPC (Locust, 1 user)", "images/s": triton_c1.locust.rps, "p50 ms": triton_c1.locust.p50_ms, "p99 ms": triton_c1.locust.p99_ms},
        {"layer": "Gateway end-to-end (Locust, 1 user)", "images/s": gateway_c1.locust.rps, "p50 ms": gateway_c1.locust.p50_ms, "p99 ms": gateway_c1.locust.p99_ms},
    ]
    # Triton wraps ONNX Runtime and the gateway wraps Triton; eager PyTorch is an alternative, not a layer.
    for below, row in zip(layers[1:], layers[2:]):
        row["p50 added ms"] = row["p50 ms"] - below["p50 ms"]
    gateway_overhead = layers[3]["p50 added ms"]
    report.sections.append(("Layers: same model, same image, one at a time", (
        f"Batch 1, one request in flight, {settings.side}x{settings.side} astronaut photo. The gateway adds JPEG/PNG "
        "decode, resize/pad, PNG encode and two S3 writes (moto, local) to the Triton call; uploads are "
        "cache-busted PNGs.\n\n" + markdown_table(layers, ["layer", "images/s", "p50 ms", "p99 ms", "p50 added ms"])
        + f"\n\nGateway overhead over Triton at p50: **{gateway_overhead:.0f} ms** per image.")))

    triton_best = max((r for r in [*batching.values(), *instances.values()]), key=lambda r: r.locust.rps)
    ceiling_rows = [
        {"what": "SGEMM numpy (FP32, 1024²)", "GFLOP/s": sgemm["numpy"], "fraction of ceiling": sgemm["numpy"] / best_sgemm},
        {"what": "SGEMM torch (FP32, 1024²)", "GFLOP/s": sgemm["torch"], "fraction of ceiling": sgemm["torch"] / best_sgemm},
        {"what": "ONNX Runtime in-process, batch 1", "GFLOP/s": flops.total / 1e9 * ort_fp32.images_per_s,
         "fraction of ceiling": flops.total / 1e9 * ort_fp32.images_per_s / best_sgemm},
        {"what": f"Triton best ({triton_best.label}, {triton_best.group})", "GFLOP/s": flops.total / 1e9 * triton_best.locust.rps,
         "fraction of ceiling": flops.total / 1e9 * triton_best.locust.rps / best_sgemm},
    ]
    report.sections.append(("Machine ceiling", (
        f"Model FLOPs per {settings.side}x{settings.side} image, counted from the ONNX graph with shape inference "
        f"({flops.counted_nodes} Conv/ConvTranspose nodes, multiply and add counted separately): "
        f"**{flops.total / 1e9:.2f} GFLOP** ({', '.join(f'{k} {v / 1e9:.2f}' for k, v in flops.by_op.items())}). "
        "Ceiling = the better measured SGEMM rate.\n\n" + markdown_table(ceiling_rows, ["what", "GFLOP/s", "fraction of ceiling"]))))

    harness: dict[str, float | None] = {}
    if perf is not None:
        harness = {
            "throughput_ratio": ratio(locust_harness.locust.rps, perf.images_per_s),
            "p50_ratio": ratio(locust_harness.locust.p50_ms, perf.p50_ms),
            "p99_ratio": ratio(locust_harness.locust.p99_ms, perf.p99_ms),
        }
        harness_rows = [
            {"generator": f"Locust gRPC user ({c} users)", "images/s": locust_harness.locust.rps,
             "p50 ms": locust_harness.locust.p50_ms, "p95 ms": locust_harness.locust.p95_ms, "p99 ms": locust_harness.locust.p99_ms},
            {"generator": f"perf_analyzer (concurrency {c})", "images/s": perf.images_per_s, "p50 ms": perf.p50_ms,
             "p95 ms": perf.p95_ms, "p99 ms": perf.p99_ms},
        ]
        report.sections.append(("Locust vs perf_analyzer", (
            f"Same model ({reference}), same concurrency, back to back, gRPC. perf_analyzer sends random "
            f"{settings.side}x{settings.side} uint8 tensors; Locust sends the photos. perf_analyzer ran three "
            "measurement windows with its stability check relaxed (shared machine), so read the ratio, not the digits.\n\n"
            + markdown_table(harness_rows, ["generator", "images/s", "p50 ms", "p95 ms", "p99 ms"])
            + f"\n\nLocust ÷ perf_analyzer: throughput **{harness['throughput_ratio']:.2f}**, p50 "
            f"**{harness['p50_ratio']:.2f}**, p99 **{harness['p99_ratio']:.2f}**.")))
    pacing = open_phase.locust.pacing or {}
    report.sections.append(("Open loop", (
        f"Constant pacing at {open_rate:g} requests/s (70% of the closed-loop throughput of {reference}) over "
        f"{2 * c} users: {pacing.get('scheduled', 0)} slots scheduled, {pacing.get('late', 0)} sent late, "
        f"{pacing.get('dropped', 0)} dropped; p50 {open_phase.locust.p50_ms:.0f} ms, p99 {open_phase.locust.p99_ms:.0f} ms, "
        f"{open_phase.locust.rps:.2f} images/s achieved.")))

    report.extra.update({
        "settings": asdict(settings),
        "flops_per_image": flops.total, "flops_by_op": flops.by_op, "sgemm_gflops": sgemm,
        "inprocess": {"torch_eager": asdict(eager), "ort_fp32": asdict(ort_fp32), "ort_int8": asdict(ort_int8)},
        "batching_speedup": ratio(ref.locust.rps, batching["off"].locust.rps),
        "int8_speedup_triton": speedup_triton, "int8_speedup_ort_p50": speedup_ort,
        "gateway_overhead_p50_ms": gateway_overhead, "layers": layers,
        "achieved_fraction": {"ort": ceiling_rows[2]["fraction of ceiling"], "triton": ceiling_rows[3]["fraction of ceiling"]},
        "perf_analyzer": asdict(perf) if perf else None, "locust_vs_perf_analyzer": harness,
    })

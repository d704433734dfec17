"""``mict benchmark`` and :mod:`mictnet.engine.measure`: fields, ratios, dtype skips, the peak's
calibration and memory, on tiny inputs (fast, not a speed test)."""

from __future__ import annotations

import argparse
import importlib.util
import json
from dataclasses import replace
from pathlib import Path
from unittest import mock

import pytest
import torch
import torchvision

from mictnet.cli import main
from mictnet.engine import measure
from mictnet.engine.measure import (
    BenchmarkReport,
    BenchmarkSettings,
    DtypeNote,
    PeakResult,
    RunResult,
    count_flops,
    count_parameters,
    format_table,
    matmul_size,
    run_benchmark,
)
from mictnet.models import build_model

TINY = (4, 32, 32)
FAST = {"input_size": TINY, "threads": 1, "repeats": 2, "min_time": 0.02, "num_classes": 5,
        "memory": False}


def fp32_only(dtype: torch.dtype | None, device: torch.device) -> bool:
    return dtype in (None, torch.float32)


@pytest.fixture(autouse=True, scope="module")
def small_peak_matrix():
    """Keep the peak's matmul small: the tests check fields, not the machine."""
    with mock.patch.dict(measure.MATMUL_MAX_SIZE, cpu=512):
        yield


@pytest.fixture(scope="module")
def report(small_peak_matrix):
    settings = BenchmarkSettings(models=("mict_resnet18", "r3d_18"), batches=(1, 2),
                                 channels_last=(False, True), fuse_bn=(True, False), **FAST)
    return run_benchmark(settings, progress=False)


def test_every_configuration_is_measured_with_consistent_statistics(report):
    assert report.dtypes[0] == "fp32"  # and bf16 where the CPU runs it natively
    keys = {(r.model, r.dtype, r.channels_last, r.fused, r.batch) for r in report.runs}
    assert keys == {(m, d, cl, f, b) for m in ("mict_resnet18", "r3d_18") for d in report.dtypes
                    for cl in (False, True) for f in (True, False) for b in (1, 2)}
    for r in report.runs:
        assert r.error is None
        assert len(r.samples) == 2
        assert r.frames_per_s_min <= r.frames_per_s <= r.frames_per_s_max
        assert r.frames_per_s_min == min(r.samples) and r.frames_per_s_max == max(r.samples)


def test_fraction_of_peak_is_flops_times_clips_per_second_over_the_timed_matmul(report):
    peaks = {p.dtype: p for p in report.peaks}
    assert list(peaks) == report.dtypes  # a peak for each measured dtype only
    for p in peaks.values():
        assert 0 < p.gflops_per_s_min <= p.gflops_per_s <= p.gflops_per_s_max
        assert 256 <= p.matmul_size <= measure.MATMUL_MAX_SIZE["cpu"]
    gflops = {i.model: i.gflops for i in report.models}
    for r in report.runs:
        expected = gflops[r.model] * r.frames_per_s / TINY[0] / peaks[r.dtype].gflops_per_s
        assert r.fraction_of_peak == pytest.approx(expected, rel=1e-9)


def test_model_facts_match_the_counters_and_peers_are_registered_torchvision_models(report):
    info = {i.model: i for i in report.models}
    mict = build_model("mict_resnet18", num_classes=5)
    assert info["mict_resnet18"].params == count_parameters(mict)
    assert info["mict_resnet18"].gflops == pytest.approx(count_flops(mict, TINY) / 1e9)
    r3d = torchvision.models.video.r3d_18(weights=None, num_classes=5)
    assert info["r3d_18"].params == count_parameters(r3d)
    peer = build_model("r2plus1d_18", num_classes=7)
    assert isinstance(peer, torchvision.models.video.VideoResNet) and peer.fc.out_features == 7


def test_report_lookup_and_table(report):
    run = report.run("r3d_18", "fp32", True, 2, fused=False)
    assert (run.model, run.dtype, run.channels_last, run.fused, run.batch) == (
        "r3d_18", "fp32", True, False, 2)
    assert report.run("r3d_18", "fp32", True, 2).fused  # the settings' first choice: folded
    with pytest.raises(KeyError):
        report.run("r3d_18", "fp16", True, 2)
    table = format_table(report)
    rows = 2 * len(report.dtypes) * 2
    assert table.count("mict_resnet18 ") == rows and table.count("r3d_18 ") == rows
    assert "not the hardware's peak" in table and "batch 2 frames/s" in table


def test_an_emulated_dtype_is_skipped_with_its_reason_unless_asked_for(caplog):
    settings = BenchmarkSettings(models=("mict_resnet18",), batches=(1,), **FAST)
    with mock.patch.object(measure, "is_native", fp32_only):
        skipped = run_benchmark(settings, progress=False)
        asked = run_benchmark(BenchmarkSettings(models=("mict_resnet18",), batches=(1,),
                                                dtypes=("bf16",), explicit_dtypes=True,
                                                peak=False, **FAST), progress=False)
    assert skipped.dtypes == ["fp32"]
    assert [(r.dtype, r.error) for r in skipped.runs] == [("fp32", None)]
    assert [p.dtype for p in skipped.peaks] == ["fp32"]  # no peak for a skipped dtype
    [note] = skipped.dtype_notes
    assert note.skipped and note.dtype == "bf16" and "no native bf16" in note.reason
    [line] = [x for x in format_table(skipped).splitlines() if x.startswith("skipped")]
    assert line.startswith("skipped bf16: cpu ") and "no native bf16" in line
    assert [(r.dtype, r.error) for r in asked.runs] == [("bf16", None)]
    assert [n.skipped for n in asked.dtype_notes] == [False]
    assert "timing bf16 although" in caplog.text
    assert "warning: bf16 timed although" in format_table(asked)


def test_the_peak_matrix_shrinks_when_a_product_is_slow():
    def at(gflops_per_s: float):
        calls = []

        def seconds(n: int) -> float:
            calls.append(n)
            return 2 * n**3 / (gflops_per_s * 1e9)
        return seconds, calls

    fast, fast_calls = at(1000.0)
    assert matmul_size(fast, max_size=4096) == 4096
    slow, slow_calls = at(1.0)  # emulated bf16 on an AVX2 CPU
    assert matmul_size(slow, max_size=4096) == 512
    assert fast_calls[-1] == 4096 and slow_calls == [256, 512]  # never timed a larger one


def test_a_slow_product_gives_a_smaller_peak_matrix_in_the_report():
    slow = lambda dtype, device: lambda n: 2 * n**3 / 1e9  # noqa: E731 - 1 GFLOP/s
    settings = BenchmarkSettings(models=("mict_resnet18",), batches=(1,), dtypes=("fp32",),
                                 explicit_dtypes=True, **FAST)
    with (mock.patch.object(measure, "_product_seconds", slow),
          mock.patch.dict(measure.MATMUL_MAX_SIZE, cpu=4096)):
        report = run_benchmark(settings, progress=False)
    [peak] = report.peaks
    assert peak.matmul_size == 512 and "fp32 512²" in format_table(report)


def test_cli_writes_json_with_memory(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["benchmark", "--models", "mict_resnet18", "--input", "4x32x32", "--batch", "1",
                 "--dtype", "fp32", "--repeats", "1", "--threads", "1", "--classes", "3",
                 "--json", str(out)])
    assert code == 0
    assert "mict_resnet18" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert set(data) == {"machine", "settings", "models", "peaks", "runs", "memory",
                         "dtype_notes"}
    assert data["machine"]["threads"] == 1 and data["settings"]["input_size"] == [4, 32, 32]
    assert data["settings"]["dtypes"] == ["fp32"] and data["settings"]["explicit_dtypes"]
    [run] = data["runs"]
    assert {"frames_per_s", "frames_per_s_min", "frames_per_s_max", "samples",
            "fraction_of_peak", "fused"} <= set(run)
    [mem] = data["memory"]
    weights_mb = data["models"][0]["params"] * 4 / 2**20
    # A fresh process holds at least the fp32 weights, and the forward pass adds activations.
    assert mem["peak_mb"] >= 0.9 * weights_mb
    assert 0 < mem["activation_mb"] < mem["peak_mb"]


def test_cli_defaults_skip_emulated_dtypes(capsys):
    with mock.patch.object(measure, "is_native", fp32_only):
        code = main(["benchmark", "--models", "mict_resnet18", "--input", "4x32x32", "--batch",
                     "1", "--repeats", "1", "--threads", "1", "--no-memory", "--no-fuse"])
    assert code == 0
    out = capsys.readouterr().out
    assert "skipped bf16: " in out and "mict_resnet18  fp32  NCDHW  keep" in out
    assert "mict_resnet18  bf16" not in out


def test_crossval_costs_time_through_the_benchmark():
    cfg = mock.Mock()
    cfg.data.frames, cfg.data.crop_size, cfg.data.resize = TINY[0], TINY[1], (40, 40)
    cfg.model.name, cfg.model.options.return_value = "mict_resnet18", {"dropout": 0.0}
    cfg.runtime.amp = "none"
    seen = []

    def spy(settings, progress=True):
        seen.append(settings)
        return real(settings, progress)

    real = measure.run_benchmark
    with mock.patch.object(measure, "run_benchmark", spy):
        cost = measure.model_costs(cfg, 5, torch.device("cpu"))
    [s] = seen
    assert (s.models, s.input_size, s.batches, s.dtypes, s.fuse_bn) == (
        ("mict_resnet18",), TINY, (measure.COSTS_BATCH,), ("fp32",), (True,))
    assert cost["frames_per_s"] > 0 and cost["params_m"] > 0 and cost["memory_mb_per_clip"] > 0
    assert cost["frames_per_s_dtype"] == "fp32"


def load_benchmark(name: str):
    """The script ``benchmarks/NAME.py`` as a module."""
    path = Path(__file__).parents[2] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_bench_models():
    return load_benchmark("bench_models")


def synthetic_report(bf16_native: bool) -> BenchmarkReport:
    """MiCT at 100 frames/s (75% of the fp32 matmul), the 3D-ResNet at 40 (b1) / 80 (b8)."""
    settings = BenchmarkSettings(models=("mict_resnet18", "resnet3d_18"),
                                 channels_last=(False, True), fuse_bn=(True, False), memory=False)
    notes = [] if bf16_native else [DtypeNote("bf16", "cpu AVX2 has no native bf16", True)]
    runs = [RunResult(m, d, cl, f, b, fps * (1.9 if d == "bf16" else 1.0))
            for m in settings.models for d in ("fp32", "bf16") for cl in (False, True)
            for f in (True, False) for b in (1, 8)
            for fps in [100.0 if m == "mict_resnet18" else {1: 40.0, 8: 80.0}[b]]]
    for r in runs:
        r.fraction_of_peak = 0.75 if r.model == "mict_resnet18" else 0.5
    report = BenchmarkReport({}, settings, [], [PeakResult("fp32", 4096, 1.0, 1.0, 1.0)], runs,
                             [], notes)
    report.runs = [r for r in runs if r.dtype in report.dtypes]
    return report


def test_bench_models_checks_fp32_targets_everywhere_and_bf16_only_where_native(capsys):
    bench = load_bench_models()
    native = bench.target_checks(synthetic_report(bf16_native=True))
    emulated = bench.target_checks(synthetic_report(bf16_native=False))
    assert len(native) == 10 and len(emulated) == 8  # 2 batches x (folded, kept) x 2, + bf16
    assert not any("bf16" in what for what, _, _ in emulated)
    assert {what for what, _, _ in emulated} < {what for what, _, _ in native}
    assert sum("BN kept" in what for what, _, _ in emulated) == 4
    measured = {what: (m, t) for what, m, t in native}
    assert measured["batch 1, BN kept: fp32 frames/s vs resnet3d_18"] == (2.5, 2.5)
    assert measured["batch 8, BN folded: fp32 fraction of the timed fp32 matmul"] == (0.75, 0.75)
    assert measured["batch 8, BN folded: bf16+channels-last vs its own fp32"][0] == \
        pytest.approx(1.9)
    with mock.patch.object(bench, "run_benchmark", lambda s: synthetic_report(False)), \
            mock.patch.object(bench, "format_table", lambda r: "table"):
        assert bench.main([]) == 0
    out = capsys.readouterr().out
    assert "SKIP bf16 targets: cpu AVX2 has no native bf16" in out
    assert out.count("PASS") == 8 and "FAIL" not in out and "keep" in out


def test_bad_requests_are_clear_errors(capsys):
    assert main(["benchmark", "--models", "no_such_net", "--input", "4x32x32"]) == 2
    assert "unknown model" in capsys.readouterr().err
    with pytest.raises(ValueError, match="dtype"):
        BenchmarkSettings(models=("mict_resnet18",), dtypes=("int3",))
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            BenchmarkSettings(models=("mict_resnet18",), device="cuda")


def test_the_amx_bf16_target_applies_where_the_bf16_matmul_runs_at_amx_speed(capsys):
    bench = load_bench_models()
    amx = synthetic_report(bf16_native=True)
    amx.peaks.append(PeakResult("bf16", 4096, 3.5, 3.5, 3.5))  # 3.5x the fp32 matmul
    checks = {what: (m, t) for what, m, t in bench.target_checks(amx)}
    assert len(checks) == 12
    assert checks["batch 1, BN folded: bf16+channels-last fraction of the timed bf16 matmul"] \
        == (0.75, 0.6)
    avx512_bf16 = synthetic_report(bf16_native=True)
    avx512_bf16.peaks.append(PeakResult("bf16", 4096, 2.0, 2.0, 2.0))  # AVX-512 BF16: ~2x
    assert len(bench.target_checks(avx512_bf16)) == 10
    with mock.patch.object(bench, "run_benchmark", lambda s: avx512_bf16), \
            mock.patch.object(bench, "format_table", lambda r: "table"):
        bench.main([])
    assert "SKIP AMX bf16 target: the bf16 matmul runs at 2.0x fp32" in capsys.readouterr().out


def test_time_stolen_by_the_hypervisor_is_measured_and_said(report):
    ticks = measure.cpu_ticks()
    if ticks is None:
        pytest.skip("no /proc/stat here")
    assert 0 <= ticks[0] <= ticks[1]
    assert 0 <= report.machine["cpu_steal_percent"] <= 100

    def table(steal: float) -> str:
        return format_table(replace(report, machine={**report.machine,
                                                     "cpu_steal_percent": steal}))

    assert "the hypervisor gave 18% of this machine's CPU time" in table(18.0)
    assert "hypervisor" not in table(0.5)


def test_the_ratio_table_shows_each_rounds_ratio_beside_the_ratio_of_medians():
    bench = load_bench_models()
    report = synthetic_report(bf16_native=False)
    for r in report.runs:  # three rounds: the baseline slows down in the second one
        r.samples = ([100.0, 90.0, 110.0] if r.model == "mict_resnet18"
                     else [r.frames_per_s, r.frames_per_s / 2, r.frames_per_s])
    assert bench.round_ratios(report.run("mict_resnet18", "fp32", False, 8, True),
                              report.run("resnet3d_18", "fp32", False, 8, True)) == [
        1.25, 2.25, 1.375]
    table = bench.ratio_table(report)
    assert "per round: median [min-max]" in table.splitlines()[0]
    row = next(line for line in table.splitlines() if line.startswith("fp32  NCDHW  fold     8"))
    assert row.endswith("1.25x  1.38x [1.25-2.25]")


def test_profile_kernels_times_the_entrance_each_stage_and_the_head():
    module = load_benchmark("profile_kernels")
    args = argparse.Namespace(model="mict_resnet18", dtype="fp32", batch=2, frames=4, size=32,
                              threads=1, channels_last=False)
    rows = module.stage_table(args).splitlines()
    assert rows[0].split() == ["stage", "ms/clip", "GFLOP/clip", "GFLOP/s", "share"]
    table = {r.split()[0]: [float(v.rstrip("%")) for v in r.split()[1:]] for r in rows[1:]}
    assert list(table) == ["entrance", "layer1", "layer2", "layer3", "layer4", "head"]
    assert all(ms > 0 for ms, *_ in table.values())
    assert all(gflops > 0 for name, (_, gflops, *_) in table.items() if name != "head")
    assert sum(share for *_, share in table.values()) == pytest.approx(100, abs=0.5)

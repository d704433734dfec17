"""``mict benchmark``: JSON fields, ratios and memory on tiny inputs (fast, not a speed test)."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision

from mictnet.cli import main
from mictnet.models import build_model
from mictnet.tools.benchmark import (
    BenchmarkSettings,
    build_benchmark_model,
    format_table,
    run_benchmark,
)
from mictnet.tools.models_table import count_flops, count_parameters

TINY = (4, 32, 32)


@pytest.fixture(scope="module")
def report():
    settings = BenchmarkSettings(
        models=("mict_resnet18", "r3d_18"), input_size=TINY, batches=(1, 2),
        dtypes=("fp32", "bf16"), channels_last=(False, True), threads=1, repeats=2,
        min_time=0.02, num_classes=5, memory=False,
    )
    return run_benchmark(settings, progress=False)


def test_every_configuration_is_measured_with_consistent_statistics(report):
    keys = {(r.model, r.dtype, r.channels_last, r.batch) for r in report.runs}
    assert keys == {(m, d, cl, b) for m in ("mict_resnet18", "r3d_18") for d in ("fp32", "bf16")
                    for cl in (False, True) for b in (1, 2)}
    for r in report.runs:
        assert r.error is None
        assert len(r.samples) == 2
        assert r.frames_per_s_min <= r.frames_per_s <= r.frames_per_s_max
        assert r.frames_per_s_min == min(r.samples) and r.frames_per_s_max == max(r.samples)


def test_fraction_of_peak_is_flops_times_clips_per_second_over_the_matmul_peak(report):
    peaks = {p.dtype: p for p in report.peaks}
    assert set(peaks) == {"fp32", "bf16"}
    for p in peaks.values():
        assert 0 < p.gflops_per_s_min <= p.gflops_per_s <= p.gflops_per_s_max
    gflops = {i.model: i.gflops for i in report.models}
    for r in report.runs:
        expected = gflops[r.model] * r.frames_per_s / TINY[0] / peaks[r.dtype].gflops_per_s
        assert r.fraction_of_peak == pytest.approx(expected, rel=1e-9)


def test_model_facts_match_the_counters_and_peers_are_torchvision_models(report):
    info = {i.model: i for i in report.models}
    mict = build_model("mict_resnet18", num_classes=5)
    assert info["mict_resnet18"].params == count_parameters(mict)
    assert info["mict_resnet18"].gflops == pytest.approx(count_flops(mict, TINY) / 1e9)
    r3d = torchvision.models.video.r3d_18(weights=None, num_classes=5)
    assert info["r3d_18"].params == count_parameters(r3d)
    peer = build_benchmark_model("r2plus1d_18", num_classes=7)
    assert isinstance(peer, torchvision.models.video.VideoResNet) and peer.fc.out_features == 7


def test_report_lookup_and_table(report):
    run = report.run("r3d_18", "bf16", True, 2)
    assert (run.model, run.dtype, run.channels_last, run.batch) == ("r3d_18", "bf16", True, 2)
    with pytest.raises(KeyError):
        report.run("r3d_18", "fp16", True, 2)
    table = format_table(report)
    assert table.count("mict_resnet18") == 4 and table.count("r3d_18") == 4
    assert "practical peak" in table and "batch 2 frames/s" in table


def test_cli_writes_json_with_memory(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["benchmark", "--models", "mict_resnet18", "--input", "4x32x32", "--batch", "1",
                 "--repeats", "1", "--threads", "1", "--classes", "3", "--json", str(out)])
    assert code == 0
    assert "mict_resnet18" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert set(data) == {"machine", "settings", "models", "peaks", "runs", "memory"}
    assert data["machine"]["threads"] == 1 and data["settings"]["input_size"] == [4, 32, 32]
    [run] = data["runs"]
    assert {"frames_per_s", "frames_per_s_min", "frames_per_s_max", "samples",
            "fraction_of_peak"} <= set(run)
    [mem] = data["memory"]
    weights_mb = data["models"][0]["params"] * 4 / 2**20
    # A fresh process holds at least the fp32 weights, and the forward pass adds activations.
    assert mem["peak_mb"] >= 0.9 * weights_mb
    assert 0 < mem["activation_mb"] < mem["peak_mb"]


def test_bad_requests_are_clear_errors(capsys):
    assert main(["benchmark", "--models", "no_such_net", "--input", "4x32x32"]) == 2
    assert "unknown model" in capsys.readouterr().err
    with pytest.raises(ValueError, match="dtype"):
        BenchmarkSettings(models=("mict_resnet18",), dtypes=("int3",))
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            BenchmarkSettings(models=("mict_resnet18",), device="cuda")

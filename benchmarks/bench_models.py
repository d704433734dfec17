"""Inference speed of MiCT-ResNet-18 against 3D-ResNet-18, with the targets of issues 2 and 9.

Eval mode, 16×160×160 clips, 2 threads (``--threads``): frames/s of ``mict_resnet18`` and
``resnet3d_18`` at batch 1 and 8, in fp32 and (where the CPU runs it natively) bf16, weights and
clip cast, channels-last off and on, batch norms folded (``mictnet.models.fuse_conv_bn``) and
kept (``build_model(...).eval()``, what most users time) — every configuration and one matrix
multiply per dtype (the timed "practical peak", an sgemm in fp32) timed in interleaved rounds by
:func:`mictnet.engine.measure.run_benchmark`. Prints the table, the ratios (of the medians, with
the ratio in each round beside them: its spread is the machine's noise), and PASS/FAIL for
the targets of ``mict_resnet18``, in the default layout, with batch norms folded and kept:

- fp32, on every CPU: at least 75% of the timed fp32 matmul at batch 1 and 8, and at least 2.5x
  ``resnet3d_18``'s frames/s at batch 1 and 1.25x at batch 8;
- bf16, only where the CPU runs bf16 natively (else ``SKIP bf16 targets: <reason>``): bf16 +
  channels-last at least 1.8x its own fp32 speed, batch norms folded, at batch 1 and 8;
- bf16 on an AMX-class CPU (by what runs: the timed bf16 matmul at least 3x the fp32 one in the
  same run, as with AMX tiles; AVX-512 BF16 gives about 2x): bf16 + channels-last, batch norms
  folded, at least 60% of the timed bf16 matmul at batch 1 and 8 (issue 18).

Exit code 1 when a target fails. On a shared machine the figures are noisy: the interleaving
spreads load drift over all configurations, and min–max show the spread.

    python benchmarks/bench_models.py [--quick] [--threads 2] [--repeats 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from mictnet.engine.measure import (
    BenchmarkReport,
    BenchmarkSettings,
    RunResult,
    format_table,
    run_benchmark,
)

MICT, BASELINE = "mict_resnet18", "resnet3d_18"
BATCHES = (1, 8)
PEAK_TARGET = 0.75
SPEEDUP_TARGET = {1: 2.5, 8: 1.25}
BF16_TARGET = 1.8
AMX_PEAK_TARGET = 0.60
AMX_MATMUL_SPEEDUP = 3.0  # bf16 matmul vs fp32 from which the CPU counts as AMX-class


def _bn(fused: bool) -> str:
    return "BN folded" if fused else "BN kept"


def ratio_table(report: BenchmarkReport) -> str:
    """MiCT vs 3D-ResNet frames/s for every dtype, layout, batch-norm choice and batch: the ratio
    of the medians, and the median and range of each round's ratio (:func:`round_ratios`)."""
    lines = [f"{'dtype':<5} {'layout':<6} {'BN':<4} {'batch':>5} {MICT + ' f/s':>18} "
             f"{BASELINE + ' f/s':>16} {'ratio':>6}  per round: median [min-max]"]
    for dtype in report.dtypes:
        for cl in report.settings.channels_last:
            for fused in report.settings.fuse_bn:
                for b in BATCHES:
                    m = report.run(MICT, dtype, cl, b, fused)
                    r = report.run(BASELINE, dtype, cl, b, fused)
                    head = (f"{dtype:<5} {'CL' if cl else 'NCDHW':<6} "
                            f"{'fold' if fused else 'keep':<4} {b:>5}")
                    if m.frames_per_s is None or r.frames_per_s is None:
                        lines.append(f"{head} failed")
                        continue
                    paired = round_ratios(m, r)
                    spread = (f"  {statistics.median(paired):.2f}x [{min(paired):.2f}-"
                              f"{max(paired):.2f}]" if paired else "")
                    lines.append(f"{head} {m.frames_per_s:>18.1f} {r.frames_per_s:>16.1f} "
                                 f"{_ratio(m, r):>5.2f}x{spread}")
    return "\n".join(lines)


def target_checks(report: BenchmarkReport) -> list[tuple[str, float, float]]:
    """``(what, measured, target)`` for each target of ``mict_resnet18`` that applies here."""
    checks = []
    for fused in report.settings.fuse_bn:
        for b in BATCHES:
            fp32 = report.run(MICT, "fp32", False, b, fused)
            base = report.run(BASELINE, "fp32", False, b, fused)
            checks.append((f"batch {b}, {_bn(fused)}: fp32 fraction of the timed fp32 matmul",
                           fp32.fraction_of_peak or 0.0, PEAK_TARGET))
            checks.append((f"batch {b}, {_bn(fused)}: fp32 frames/s vs {BASELINE}",
                           _ratio(fp32, base), SPEEDUP_TARGET[b]))
    if "bf16" in report.dtypes:
        for b in BATCHES:
            fast = report.run(MICT, "bf16", True, b, True)
            checks.append((f"batch {b}, {_bn(True)}: bf16+channels-last vs its own fp32",
                           _ratio(fast, report.run(MICT, "fp32", False, b, True)), BF16_TARGET))
        if amx_class(report):
            for b in BATCHES:
                fast = report.run(MICT, "bf16", True, b, True)
                checks.append((f"batch {b}, {_bn(True)}: bf16+channels-last fraction of the timed "
                               "bf16 matmul", fast.fraction_of_peak or 0.0, AMX_PEAK_TARGET))
    return checks


def matmul_speedup(report: BenchmarkReport) -> float:
    """The timed bf16 matmul's GFLOP/s over the fp32 one's, in this run (0 without both)."""
    peaks = {p.dtype: p.gflops_per_s for p in report.peaks}
    return peaks["bf16"] / peaks["fp32"] if peaks.get("bf16") and peaks.get("fp32") else 0.0


def amx_class(report: BenchmarkReport) -> bool:
    """Whether bf16 runs at AMX speed here: its timed matmul ≥ 3x fp32's (AVX-512 BF16: ~2x)."""
    return matmul_speedup(report) >= AMX_MATMUL_SPEEDUP


def round_ratios(a: RunResult, b: RunResult) -> list[float]:
    """``a``'s frames/s over ``b``'s in each round (both timed in it, one after the other): how
    far the ratio of the medians, which the targets use, moves with the machine's noise."""
    return [x / y for x, y in zip(a.samples, b.samples, strict=True) if y]


def _ratio(a: RunResult, b: RunResult) -> float:
    return a.frames_per_s / b.frames_per_s if a.frames_per_s and b.frames_per_s else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--quick", action="store_true",
                        help="2 rounds of shorter measurements (a rough look)")
    parser.add_argument("--json", metavar="FILE", help="also write the full report as JSON")
    args = parser.parse_args(argv)
    settings = BenchmarkSettings(
        models=(MICT, BASELINE), input_size=(16, 160, 160), batches=BATCHES, device="cpu",
        dtypes=("fp32", "bf16"), channels_last=(False, True), fuse_bn=(True, False),
        threads=args.threads, repeats=2 if args.quick else args.repeats,
        min_time=0.1 if args.quick else 0.3, memory=False,
    )
    report = run_benchmark(settings)
    print(format_table(report))
    print()
    print(ratio_table(report))
    print()
    for note in report.dtype_notes:
        if note.skipped and note.dtype == "bf16":
            print(f"SKIP bf16 targets: {note.reason}")
    if "bf16" in report.dtypes and not amx_class(report):
        print(f"SKIP AMX bf16 target: the bf16 matmul runs at {matmul_speedup(report):.1f}x fp32 "
              f"here (AMX-class from {AMX_MATMUL_SPEEDUP:.0f}x)")
    checks = target_checks(report)
    for what, measured, target in checks:
        verdict = "PASS" if measured >= target else "FAIL"
        shown = (f"{measured:.0%} (target >= {target:.0%})" if "matmul" in what
                 else f"{measured:.2f}x (target >= {target:.2f}x)")
        print(f"{verdict}  {MICT} {what}: {shown}")
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return 0 if all(m >= t for _, m, t in checks) else 1


if __name__ == "__main__":
    sys.exit(main())

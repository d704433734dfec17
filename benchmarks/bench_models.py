"""Inference speed of MiCT-ResNet-18 against 3D-ResNet-18, with the targets of the models issue.

Eval mode, 16×160×160 clips, 2 threads (``--threads``): frames/s of ``mict_resnet18`` and
``resnet3d_18`` at batch 1 and 8, fp32 and bf16 (weights and clip cast), channels-last off and
on — every configuration and a large fp32 and bf16 matrix multiply (the machine's practical peak)
timed in interleaved rounds by :func:`mictnet.tools.benchmark.run_benchmark`. Prints the table,
the ratios, and PASS/FAIL for the targets of ``mict_resnet18``:

- at least 70% of the practical fp32 peak at batch 1 and at batch 8 (fp32, default layout);
- at least 2.5x ``resnet3d_18``'s frames/s at batch 1 and 1.25x at batch 8 (fp32, default layout);
- bf16 + channels-last at least 1.8x its own fp32 speed (default layout), at batch 1 and 8.

Exit code 1 when a target fails. On a shared machine the figures are noisy: the interleaving
spreads load drift over all configurations, and min–max show the spread.

    python benchmarks/bench_models.py [--quick] [--threads 2] [--repeats 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mictnet.tools.benchmark import BenchmarkReport, BenchmarkSettings, format_table, run_benchmark

MICT, BASELINE = "mict_resnet18", "resnet3d_18"
BATCHES = (1, 8)
PEAK_TARGET = 0.70
SPEEDUP_TARGET = {1: 2.5, 8: 1.25}
BF16_TARGET = 1.8


def ratio_table(report: BenchmarkReport) -> str:
    """MiCT vs 3D-ResNet frames/s for every dtype, layout and batch."""
    lines = [f"{'dtype':<5} {'layout':<6} {'batch':>5} {MICT + ' f/s':>18} "
             f"{BASELINE + ' f/s':>16} {'ratio':>6}"]
    for dtype in report.settings.dtypes:
        for cl in report.settings.channels_last:
            for b in BATCHES:
                m, r = report.run(MICT, dtype, cl, b), report.run(BASELINE, dtype, cl, b)
                if m.frames_per_s is None or r.frames_per_s is None:
                    lines.append(f"{dtype:<5} {'CL' if cl else 'NCDHW':<6} {b:>5} failed")
                    continue
                lines.append(f"{dtype:<5} {'CL' if cl else 'NCDHW':<6} {b:>5} "
                             f"{m.frames_per_s:>18.1f} {r.frames_per_s:>16.1f} "
                             f"{m.frames_per_s / r.frames_per_s:>5.2f}x")
    return "\n".join(lines)


def target_checks(report: BenchmarkReport) -> list[tuple[str, float, float]]:
    """``(what, measured, target)`` for each target of ``mict_resnet18``."""
    checks = []
    for b in BATCHES:
        fp32 = report.run(MICT, "fp32", False, b)
        base = report.run(BASELINE, "fp32", False, b)
        fast = report.run(MICT, "bf16", True, b)
        checks.append((f"batch {b}: fp32 fraction of the fp32 matmul peak",
                       fp32.fraction_of_peak or 0.0, PEAK_TARGET))
        checks.append((f"batch {b}: fp32 frames/s vs {BASELINE}",
                       _ratio(fp32.frames_per_s, base.frames_per_s), SPEEDUP_TARGET[b]))
        checks.append((f"batch {b}: bf16+channels-last vs its own fp32",
                       _ratio(fast.frames_per_s, fp32.frames_per_s), BF16_TARGET))
    return checks


def _ratio(a: float | None, b: float | None) -> float:
    return a / b if a and b else 0.0


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
        dtypes=("fp32", "bf16"), channels_last=(False, True), threads=args.threads,
        repeats=2 if args.quick else args.repeats, min_time=0.1 if args.quick else 0.3,
        memory=False,
    )
    report = run_benchmark(settings)
    print(format_table(report))
    print()
    print(ratio_table(report))
    print()
    checks = target_checks(report)
    for what, measured, target in checks:
        verdict = "PASS" if measured >= target else "FAIL"
        shown = (f"{measured:.0%} (target >= {target:.0%})" if "peak" in what
                 else f"{measured:.2f}x (target >= {target:.2f}x)")
        print(f"{verdict}  {MICT} {what}: {shown}")
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return 0 if all(m >= t for _, m, t in checks) else 1


if __name__ == "__main__":
    sys.exit(main())

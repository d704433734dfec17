"""Where the time of one forward pass goes: the operators ``torch.profiler`` times, and the oneDNN
kernel each convolution and matmul runs (``ONEDNN_VERBOSE=1``: brgconv with AMX, jit avx512,
gemm, reference...), summed per kernel and per shape class, so that layouts and shapes that fall
off the fast path show (issue 18); and the time and FLOP/s of each stage (the entrance, everything
before ``layer1``; ``layer1``-``layer4``; the head), medians of 5 passes.

    python benchmarks/profile_kernels.py                  # mict_resnet18, channels-last, bf16
                                                          # where native, else fp32
    python benchmarks/profile_kernels.py --dtype fp32 --batch 8 --no-channels-last

The model is prepared as ``benchmarks/bench_models.py`` measures it (``engine.measure``:
batch norms folded, cast, optionally channels-last).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict

import torch
from torch.utils.flop_counter import FlopCounterMode

from mictnet.engine.measure import dtype_reason, make_clip, prepare_model

CHILD = "MICTNET_PROFILE_CHILD"


def model_and_clip(args: argparse.Namespace) -> tuple[torch.nn.Module, torch.Tensor]:
    """The model and a random clip, as ``bench_models.py`` measures them."""
    torch.set_num_threads(args.threads)
    model = prepare_model(args.model, 101, args.dtype, args.channels_last, "cpu")
    clip = make_clip(args.batch, (args.frames, args.size, args.size), args.dtype,
                     args.channels_last, "cpu")
    return model, clip


def verbose_pass(args: argparse.Namespace) -> None:
    """The child of :func:`kernel_summary`: two warm-up passes, a marker, one pass."""
    model, clip = model_and_clip(args)
    with torch.inference_mode():
        for _ in range(2):
            model(clip)
        print("=== profiled passes ===", flush=True)
        model(clip)


def operator_table(args: argparse.Namespace) -> str:
    """torch.profiler's operators by self CPU time over three passes."""
    from torch.profiler import ProfilerActivity, profile

    model, clip = model_and_clip(args)
    with torch.inference_mode():
        model(clip)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(3):
                model(clip)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)


STAGES = ("layer1", "layer2", "layer3", "layer4")


def stage_table(args: argparse.Namespace) -> str:
    """Per clip: ms (median of 5 passes), GFLOPs and GFLOP/s of the entrance (all before
    ``layer1``), each stage and the head, timed by hooks at the stages' boundaries."""
    model, clip = model_and_clip(args)
    ends: dict[str, float] = {}

    def mark(name: str):
        return lambda *_: ends.__setitem__(name, time.perf_counter())

    hooks = [model.layer1.register_forward_pre_hook(mark("entrance"))]
    hooks += [getattr(model, n).register_forward_hook(mark(n)) for n in STAGES]
    seconds: dict[str, list[float]] = defaultdict(list)
    with torch.inference_mode():
        model(clip)
        for _ in range(5):
            start = time.perf_counter()
            model(clip)
            ends["head"] = time.perf_counter()
            for name in ("entrance", *STAGES, "head"):
                seconds[name].append(ends[name] - start)
                start = ends[name]
        with FlopCounterMode(display=False) as counter:
            model(clip)
    for hook in hooks:
        hook.remove()
    counts = counter.get_flop_counts()
    root = type(model).__name__
    flops = {n: sum(counts.get(f"{root}.{n}", {}).values()) for n in STAGES}
    flops["head"] = sum(counts.get(f"{root}.fc", {}).values())
    flops["entrance"] = counter.get_total_flops() - sum(flops.values())
    total = sum(statistics.median(v) for v in seconds.values())
    lines = [f"{'stage':<9} {'ms/clip':>8} {'GFLOP/clip':>10} {'GFLOP/s':>8} {'share':>6}"]
    for name, times in seconds.items():
        t, gf = statistics.median(times), flops[name] / 1e9 / args.batch
        lines.append(f"{name:<9} {1e3 * t / args.batch:>8.1f} {gf:>10.2f} "
                     f"{gf * args.batch / t:>8.1f} {100 * t / total:>5.1f}%")
    return "\n".join(lines)


def kernel_summary(args: argparse.Namespace) -> list[dict]:
    """One profiled pass in a child process with ``ONEDNN_VERBOSE=1``: time per primitive kind
    and implementation (ms), most first."""
    argv = [sys.executable, __file__, *sys.argv[1:]]
    env = {**os.environ, "ONEDNN_VERBOSE": "1", CHILD: "1"}
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    lines = out.split("=== profiled passes ===", 1)[-1].splitlines()
    totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])
    for line in lines:
        fields = line.split(",")
        if len(fields) < 6 or not line.startswith("onednn_verbose") or "exec" not in fields:
            continue
        at = fields.index("exec")
        kind, impl = fields[at + 2], fields[at + 3]
        totals[(kind, impl)][0] += 1
        totals[(kind, impl)][1] += float(fields[-1])
    rows = [{"primitive": k, "kernel": i, "calls": n, "ms": round(ms, 2)}
            for (k, i), (n, ms) in totals.items()]
    return sorted(rows, key=lambda r: -r["ms"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="mict_resnet18")
    p.add_argument("--dtype", choices=("fp32", "bf16"), default=None,
                   help="default: bf16 where the CPU runs it natively, else fp32")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, default=160)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    p.add_argument("--json", action="store_true", help="print the kernel summary as JSON")
    args = p.parse_args()
    if args.dtype is None:
        args.dtype = "bf16" if dtype_reason("bf16", "cpu") is None else "fp32"
    if os.environ.get(CHILD):
        verbose_pass(args)
        return 0
    print(f"{args.model} {args.dtype} batch {args.batch} {args.frames}x{args.size}^2 "
          f"channels-last {args.channels_last}, {args.threads} threads, CPU "
          f"{torch.backends.cpu.get_cpu_capability()}")
    rows = kernel_summary(args)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        total = sum(r["ms"] for r in rows) or 1.0
        print(f"{'primitive':<14} {'kernel':<40} {'calls':>5} {'ms':>8} {'share':>6}")
        for r in rows:
            print(f"{r['primitive']:<14} {r['kernel']:<40} {r['calls']:>5} {r['ms']:>8.2f} "
                  f"{100 * r['ms'] / total:>5.1f}%")
        print(operator_table(args))
        print(stage_table(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())

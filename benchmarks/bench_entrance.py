"""The entrance 3D convolution of MiCT-ResNet-18 (3 -> 64 channels, k×7×7, stride (1, 2, 2)) alone.

Times, in interleaved rounds on channels-last 16×160×160 clips, three ways of computing the same
causal convolution:

- ``padded``: ``F.conv3d`` on the clip zero-padded after its end (the plain formulation; baseline);
- ``skip zeros``: :class:`mictnet.models.CausalConv3d` with the column-pair path forced off;
- ``skip zeros + pairs``: with the column-pair path forced on (what ``CausalConv3d`` picks for
  bf16 on the CPU and for fp32 on AVX2 CPUs);

and, at batch 8, the whole entrance branch (convolution, eval-mode batch norm, 3D max-pool, ReLU)
two ways:

- ``branch, whole batch``: the eight clips in one convolution;
- ``branch, cache chunks``: what ``conv_bn_pool`` does in CPU inference, chunks of clips whose
  convolution output fits in ``mictnet.models.skeleton.CACHE_BYTES``.

Prints the median time per call and the ratio to ``padded`` for fp32 and bf16 at batch 1 and 8
(bf16 only where the CPU runs it natively, unless named with ``--dtype``), timed by
:func:`mictnet.engine.measure.time_interleaved`.

    python benchmarks/bench_entrance.py [--threads 2] [--rounds 5] [--depth 7] [--dtype fp32 bf16]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from unittest import mock

import torch
import torch.nn.functional as F

from mictnet.engine.measure import Timed, check_dtypes, time_interleaved
from mictnet.engine.precision import DTYPES
from mictnet.models import CausalConv3d, lookahead_conv, skeleton
from mictnet.models.mict import LookaheadConv3dBranch

BATCHES = (1, 8)


def variants(conv: CausalConv3d) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    k = conv.kernel_size[0]

    def padded(x: torch.Tensor) -> torch.Tensor:
        return F.conv3d(F.pad(x, (0, 0, 0, 0, 0, k - 1)), conv.weight, None, conv.stride,
                        conv.padding)

    def causal(pairs: bool) -> Callable[[torch.Tensor], torch.Tensor]:
        def call(x: torch.Tensor) -> torch.Tensor:
            with mock.patch.object(lookahead_conv, "_pairs_columns", lambda *_: pairs):
                return conv(x)
        return call

    return {"padded": padded, "skip zeros": causal(False), "skip zeros + pairs": causal(True)}


def branch_variants(depth: int, dtype: torch.dtype
                    ) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """The entrance branch in eval mode, on the whole batch and in cache-sized chunks."""
    branch = LookaheadConv3dBranch(3, 64, (depth, 7, 7), (1, 2, 2), torch.nn.MaxPool3d(3, 2, 1))
    branch = branch.to(dtype, memory_format=torch.channels_last_3d).eval()

    def whole(x: torch.Tensor) -> torch.Tensor:
        with mock.patch.object(skeleton, "CACHE_BYTES", 1 << 62):
            return branch(x)

    return {"branch, whole batch": whole, "branch, cache chunks": branch}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--depth", type=int, default=7, help="first kernel depth k (default 7)")
    parser.add_argument("--dtype", nargs="+", choices=["fp32", "bf16"], default=None,
                        help="default: fp32, and bf16 where the CPU runs it natively")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    asked = args.dtype or ["fp32", "bf16"]
    skipped = [n for n in check_dtypes(asked, "cpu", explicit=args.dtype is not None) if n.skipped]
    for note in skipped:
        print(f"skipped {note.dtype}: {note.reason}")
    cases = []
    for dtype_name in [d for d in asked if d not in {n.dtype for n in skipped}]:
        dtype = DTYPES[dtype_name]
        conv = CausalConv3d(3, 64, (args.depth, 7, 7), (1, 2, 2)).to(dtype)
        conv.weight.data = conv.weight.data.contiguous(memory_format=torch.channels_last_3d)
        for batch in BATCHES:
            clip = torch.randn(batch, 3, 16, 160, 160).to(dtype)
            clip = clip.contiguous(memory_format=torch.channels_last_3d)
            calls = variants(conv) | (branch_variants(args.depth, dtype) if batch > 1 else {})
            with torch.inference_mode():  # warm-up, and the variants must agree
                for name, fn in calls.items():
                    base = "branch, whole batch" if name.startswith("branch") else "padded"
                    want, got = calls[base](clip).float(), fn(clip).float()
                    assert (got - want).abs().max() <= 1e-2 * want.abs().max(), name
            cases += [Timed((dtype_name, batch, name), lambda fn=fn, clip=clip: fn(clip), 1.0)
                      for name, fn in calls.items()]
    time_interleaved(cases, "cpu", args.rounds, min_time=0.3)
    times = {t.key: [1 / calls_per_s for calls_per_s in t.samples] for t in cases}
    print(f"entrance 3->64, {args.depth}x7x7, stride (1,2,2), 16x160x160 channels-last, "
          f"{args.threads} threads; median of {args.rounds} interleaved rounds")
    print(f"{'dtype':<5} {'batch':>5} {'variant':<22} {'ms/call':>8} {'speed-up':>9}")
    for (dtype_name, batch, name), values in times.items():
        ms = 1000 * statistics.median(values)
        base = "branch, whole batch" if name.startswith("branch") else "padded"
        base_ms = 1000 * statistics.median(times[(dtype_name, batch, base)])
        print(f"{dtype_name:<5} {batch:>5} {name:<22} {ms:>8.1f} {base_ms / ms:>8.2f}x")
    print("speed-up: against padded, and for the branch against the whole batch")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

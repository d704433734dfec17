"""``mict benchmark``: parameters, GFLOPs, memory per clip and inference speed of models.

Speed is measured in inference mode on random clips. Every configuration (model × dtype ×
layout × batch) and a large matrix multiply per dtype (the device's practical peak) are timed in
interleaved rounds — one measurement of each per round — so drift in the machine's load hits all
of them equally; each is reported as the median and min–max over rounds. Low precision casts the
weights and the clip to the dtype (pure bf16/fp16 inference, not autocast). A model's fraction of
the peak is its FLOPs per clip × clips/s ÷ the matmul's FLOP/s in the same dtype.

Memory for one clip (batch 1): on CUDA, ``torch.cuda.max_memory_allocated`` while building the
model and running one clip; on CPU, a fresh Python process builds the model and runs one clip and
reports its peak resident memory (Linux ``VmHWM``) minus its resident memory before building.
Both include the weights, the clip and the activations; ``activation_mb`` is the part added by
the forward pass alone (on CPU: peak minus resident memory just before it, peak reset first).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torchvision
from torch import nn
from tqdm import tqdm

from ..models import build_model, fuse_conv_bn, list_models, to_channels_last
from .models_table import count_flops, count_parameters, parse_input_size

DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}
PEER_MODELS: dict[str, Callable[..., nn.Module]] = {
    "r3d_18": torchvision.models.video.r3d_18,
    "mc3_18": torchvision.models.video.mc3_18,
    "r2plus1d_18": torchvision.models.video.r2plus1d_18,
}
PEAK_DTYPES = ("fp32", "bf16")  # the practical peak is always timed in these (plus any asked for)
MATMUL_SIZE = {"cpu": 4096, "cuda": 8192}


@dataclass(frozen=True)
class BenchmarkSettings:
    """What to measure and how."""

    models: tuple[str, ...]
    input_size: tuple[int, int, int] = (16, 160, 160)  # frames, height, width
    batches: tuple[int, ...] = (1, 8)
    device: str = "cpu"
    dtypes: tuple[str, ...] = ("fp32",)
    channels_last: tuple[bool, ...] = (False,)
    threads: int | None = None  # torch intra-op threads; None keeps torch's default
    repeats: int = 5  # interleaved rounds
    min_time: float = 0.3  # seconds per measurement (forward passes are repeated to reach it)
    num_classes: int = 101
    memory: bool = True
    fuse_bn: bool = True  # fold batch norms into convolutions, as inference does

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in all_model_names()]
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; choose from {all_model_names()}")
        bad = [d for d in self.dtypes if d not in DTYPES]
        if bad:
            raise ValueError(f"unknown dtype(s) {bad}; choose from {list(DTYPES)}")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be cpu or cuda, got {self.device!r}")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("--device cuda asked for, but torch sees no CUDA device")
        if not self.models or not self.batches or self.repeats < 1 or min(self.batches) < 1:
            raise ValueError("need at least one model, positive batch sizes and repeats >= 1")


@dataclass
class ModelInfo:
    model: str
    params: int
    gflops: float  # per clip, 2 × multiply-accumulates (torch.utils.flop_counter)


@dataclass
class MemoryResult:
    model: str
    dtype: str
    channels_last: bool
    peak_mb: float  # weights + clip + activations
    activation_mb: float  # added by the forward pass alone


@dataclass
class PeakResult:
    dtype: str
    matmul_size: int
    gflops_per_s: float  # median over rounds
    gflops_per_s_min: float
    gflops_per_s_max: float


@dataclass
class RunResult:
    model: str
    dtype: str
    channels_last: bool
    batch: int
    frames_per_s: float | None  # median over rounds; None when the configuration failed
    frames_per_s_min: float | None = None
    frames_per_s_max: float | None = None
    samples: list[float] = field(default_factory=list)
    fraction_of_peak: float | None = None  # achieved FLOP/s ÷ matmul FLOP/s, same dtype
    error: str | None = None


@dataclass
class BenchmarkReport:
    machine: dict[str, str | int]
    settings: BenchmarkSettings
    models: list[ModelInfo]
    peaks: list[PeakResult]
    runs: list[RunResult]
    memory: list[MemoryResult]

    def to_dict(self) -> dict:
        return asdict(self)

    def run(self, model: str, dtype: str, channels_last: bool, batch: int) -> RunResult:
        """The result of one configuration."""
        for r in self.runs:
            if (r.model, r.dtype, r.channels_last, r.batch) == (model, dtype, channels_last, batch):
                return r
        raise KeyError(f"no run {model} {dtype} channels_last={channels_last} batch={batch}")


def all_model_names() -> list[str]:
    """Registered models and the torchvision peers."""
    return list_models() + list(PEER_MODELS)


def build_benchmark_model(name: str, num_classes: int = 101) -> nn.Module:
    """A registered model, or a torchvision video model (``r3d_18``...) without weights."""
    if name in PEER_MODELS:
        return PEER_MODELS[name](weights=None, num_classes=num_classes)
    return build_model(name, num_classes=num_classes)


def prepare_model(name: str, num_classes: int, dtype: str, channels_last: bool,
                  device: str, fuse_bn: bool = True) -> nn.Module:
    """Build ``name`` in eval mode (batch norms folded unless ``fuse_bn`` is false), cast to
    ``dtype`` on ``device``, optionally channels-last."""
    model = build_benchmark_model(name, num_classes).eval()
    if fuse_bn:
        fuse_conv_bn(model)
    model.to(device=device, dtype=DTYPES[dtype])
    return to_channels_last(model) if channels_last else model


def make_clip(batch: int, input_size: tuple[int, int, int], dtype: str, channels_last: bool,
              device: str) -> torch.Tensor:
    """A random ``batch×3×T×H×W`` clip (channels-last-3d when asked)."""
    clip = torch.randn(batch, 3, *input_size, device=device).to(DTYPES[dtype])
    return clip.contiguous(memory_format=torch.channels_last_3d) if channels_last else clip


def machine_description(device: str, threads: int) -> dict[str, str | int]:
    """Device, CPU model, thread count and library versions, for the record."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info: dict[str, str | int] = {
        "device": device, "cpu": cpu, "cpu_count": os.cpu_count() or 0, "threads": threads,
        "torch": torch.__version__, "python": platform.python_version(),
        "platform": platform.platform(),
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


# ---------------------------------------------------------------- memory


def _proc_status_kib(key: str) -> int | None:
    status = Path("/proc/self/status")
    if not status.is_file():
        return None
    for line in status.read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux); False where impossible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_rss_bytes() -> int:
    hwm = _proc_status_kib("VmHWM")
    if hwm is not None:
        return hwm * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


def _rss_bytes() -> int:
    rss = _proc_status_kib("VmRSS")
    return rss * 1024 if rss is not None else _peak_rss_bytes()


def cpu_memory_here(name: str, num_classes: int, input_size: tuple[int, int, int], dtype: str,
                    channels_last: bool) -> dict[str, float]:
    """Measure one clip in *this* process (meant for a fresh child, see ``clip_memory``)."""
    gc.collect()
    start = _rss_bytes()
    model = prepare_model(name, num_classes, dtype, channels_last, "cpu")
    clip = make_clip(1, input_size, dtype, channels_last, "cpu")
    gc.collect()
    ready = _rss_bytes()
    if not _reset_peak_rss():
        ready = _peak_rss_bytes()  # no reset: the forward pass must exceed the build's peak
    with torch.inference_mode():
        model(clip)
    peak = _peak_rss_bytes()
    return {"peak_mb": (peak - start) / 2**20, "activation_mb": max(peak - ready, 0) / 2**20}


def _cpu_memory_in_child(name: str, num_classes: int, input_size: tuple[int, int, int],
                         dtype: str, channels_last: bool, threads: int) -> dict[str, float]:
    args = json.dumps([name, num_classes, list(input_size), dtype, channels_last])
    code = ("import json, sys, torch\n"
            f"torch.set_num_threads({threads})\n"
            "from mictnet.tools.benchmark import cpu_memory_here\n"
            "n, c, s, d, cl = json.loads(sys.argv[1])\n"
            "print(json.dumps(cpu_memory_here(n, c, tuple(s), d, cl)))\n")
    proc = subprocess.run([sys.executable, "-c", code, args], capture_output=True, text=True)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"memory probe for {name} ({dtype}) failed: {tail[0]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cuda_memory(name: str, num_classes: int, input_size: tuple[int, int, int], dtype: str,
                 channels_last: bool) -> dict[str, float]:
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    start = torch.cuda.memory_allocated()
    model = prepare_model(name, num_classes, dtype, channels_last, "cuda")
    clip = make_clip(1, input_size, dtype, channels_last, "cuda")
    ready = torch.cuda.memory_allocated()
    with torch.inference_mode():
        model(clip)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    del model, clip
    torch.cuda.empty_cache()
    return {"peak_mb": (peak - start) / 2**20, "activation_mb": (peak - ready) / 2**20}


def clip_memory(settings: BenchmarkSettings, name: str, dtype: str, channels_last: bool,
                threads: int) -> MemoryResult:
    """Peak memory for one clip of ``name`` (see the module docstring for what is measured)."""
    if settings.device == "cuda":
        mem = _cuda_memory(name, settings.num_classes, settings.input_size, dtype, channels_last)
    else:
        mem = _cpu_memory_in_child(name, settings.num_classes, settings.input_size, dtype,
                                   channels_last, threads)
    return MemoryResult(name, dtype, channels_last, mem["peak_mb"], mem["activation_mb"])


# ---------------------------------------------------------------- timing


def _synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


@dataclass
class _Timed:
    """One interleaved configuration: a callable, the work it does per call, its samples."""

    key: tuple
    call: Callable[[], object]
    work: float  # frames (models) or FLOPs (matmul) per call
    iters: int = 1
    samples: list[float] = field(default_factory=list)  # work per second
    error: str | None = None


def _calibrate(timed: _Timed, device: str, min_time: float, warmup: int = 1) -> None:
    """Warm up and choose how many calls make one measurement of at least ``min_time``."""
    try:
        for _ in range(warmup):
            timed.call()
        _synchronize(device)
        start = time.perf_counter()
        timed.call()
        _synchronize(device)
        elapsed = time.perf_counter() - start
    except (RuntimeError, NotImplementedError) as err:
        timed.error = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        return
    timed.iters = max(1, math.ceil(min_time / max(elapsed, 1e-6)))


def _measure(timed: _Timed, device: str) -> None:
    _synchronize(device)
    start = time.perf_counter()
    for _ in range(timed.iters):
        timed.call()
    _synchronize(device)
    timed.samples.append(timed.work * timed.iters / (time.perf_counter() - start))


def _matmul_call(dtype: str, device: str) -> tuple[Callable[[], object], float]:
    n = MATMUL_SIZE[device]
    a = torch.randn(n, n, device=device).to(DTYPES[dtype])
    b = torch.randn(n, n, device=device).to(DTYPES[dtype])
    return (lambda: torch.mm(a, b)), 2.0 * n**3


def _model_call(model: nn.Module, clip: torch.Tensor) -> Callable[[], object]:
    return lambda: model(clip)


def run_benchmark(settings: BenchmarkSettings, progress: bool = True) -> BenchmarkReport:
    """Measure every configuration of ``settings`` (see the module docstring)."""
    old_threads = torch.get_num_threads()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    threads = torch.get_num_threads()
    try:
        return _run(settings, threads, progress)
    finally:
        torch.set_num_threads(old_threads)


def _run(settings: BenchmarkSettings, threads: int, progress: bool) -> BenchmarkReport:
    device, size = settings.device, settings.input_size
    if device == "cuda":
        torch.backends.cudnn.benchmark = True
    infos = []
    for name in settings.models:
        model = build_benchmark_model(name, settings.num_classes)
        infos.append(ModelInfo(name, count_parameters(model), count_flops(model, size) / 1e9))
    layouts = [(d, cl) for d in settings.dtypes for cl in settings.channels_last]
    memory = []
    if settings.memory:
        probes = [(n, d, cl) for n in settings.models for d, cl in layouts]
        for name, dtype, cl in tqdm(probes, desc="memory", disable=not progress, leave=False):
            memory.append(clip_memory(settings, name, dtype, cl, threads))

    peak_dtypes = list(dict.fromkeys([*PEAK_DTYPES, *settings.dtypes]))
    timed: list[_Timed] = []
    for dtype in peak_dtypes:
        call, flops = _matmul_call(dtype, device)
        timed.append(_Timed(("matmul", dtype), call, flops))
    for name in settings.models:
        for dtype, cl in layouts:
            model = prepare_model(name, settings.num_classes, dtype, cl, device,
                                  settings.fuse_bn)
            for batch in settings.batches:
                clip = make_clip(batch, size, dtype, cl, device)
                timed.append(_Timed((name, dtype, cl, batch), _model_call(model, clip),
                                    float(batch * size[0])))
    with torch.inference_mode():
        for t in tqdm(timed, desc="warm-up", disable=not progress, leave=False):
            _calibrate(t, device, settings.min_time)
        live = [t for t in timed if t.error is None]
        bar = tqdm(total=settings.repeats * len(live), desc="timing", disable=not progress,
                   leave=False)
        for _ in range(settings.repeats):
            for t in live:
                _measure(t, device)
                bar.update()
        bar.close()

    peaks = []
    for t in timed[:len(peak_dtypes)]:
        if t.error is not None:
            continue  # e.g. a dtype the device cannot multiply: no peak, no fraction
        gf = [s / 1e9 for s in t.samples]
        peaks.append(PeakResult(t.key[1], MATMUL_SIZE[device], statistics.median(gf), min(gf),
                                max(gf)))
    peak_of = {p.dtype: p.gflops_per_s for p in peaks}
    gflops_of = {i.model: i.gflops for i in infos}
    runs = []
    for t in timed[len(peak_dtypes):]:
        name, dtype, cl, batch = t.key
        if t.error is not None:
            runs.append(RunResult(name, dtype, cl, batch, None, error=t.error))
            continue
        fps = statistics.median(t.samples)
        fraction = None
        if dtype in peak_of:
            fraction = gflops_of[name] * fps / size[0] / peak_of[dtype]
        runs.append(RunResult(name, dtype, cl, batch, fps, min(t.samples), max(t.samples),
                              list(t.samples), fraction))
    return BenchmarkReport(machine_description(device, threads), settings, infos, peaks, runs,
                           memory)


# ---------------------------------------------------------------- output


def format_table(report: BenchmarkReport) -> str:
    """The report as a plain-text table: one row per model × dtype × layout."""
    s = report.settings
    t, h, w = s.input_size
    m = report.machine
    lines = [
        f"{m['device']}: {m.get('gpu', m['cpu'])}, {m['threads']} threads, torch {m['torch']}; "
        f"input {t}x{h}x{w}; {s.repeats} interleaved rounds, frames/s median [min-max]",
        "practical peak (matmul " + ", ".join(
            f"{p.dtype} {p.gflops_per_s:.0f} GFLOP/s [{p.gflops_per_s_min:.0f}-"
            f"{p.gflops_per_s_max:.0f}]" for p in report.peaks) + ")",
    ]
    header = f"{'model':<14} {'dtype':<5} {'layout':<6} {'params':>7} {'GFLOPs':>7} {'mem MB':>7}"
    for b in s.batches:
        header += f" | {f'batch {b} frames/s':>22} {'%peak':>5}"
    lines += [header, "-" * len(header)]
    info = {i.model: i for i in report.models}
    mem = {(r.model, r.dtype, r.channels_last): r for r in report.memory}
    for name in s.models:
        for dtype in s.dtypes:
            for cl in s.channels_last:
                mr = mem.get((name, dtype, cl))
                mem_text = f"{mr.peak_mb:.0f}" if mr else "-"
                row = (f"{name:<14} {dtype:<5} {'CL' if cl else 'NCDHW':<6} "
                       f"{info[name].params / 1e6:>6.1f}M {info[name].gflops:>7.1f} "
                       f"{mem_text:>7}")
                for b in s.batches:
                    r = report.run(name, dtype, cl, b)
                    if r.frames_per_s is None:
                        row += f" | {'failed':>22} {'-':>5}"
                        continue
                    fps = (f"{r.frames_per_s:.1f} "
                           f"[{r.frames_per_s_min:.1f}-{r.frames_per_s_max:.1f}]")
                    frac = "-" if r.fraction_of_peak is None else f"{100 * r.fraction_of_peak:.0f}%"
                    row += f" | {fps:>22} {frac:>5}"
                lines.append(row)
    failed = [r for r in report.runs if r.error]
    lines += [f"failed: {r.model} {r.dtype} batch {r.batch}: {r.error}" for r in failed]
    if report.memory:
        lines.append("mem MB: one clip, weights + clip + activations "
                     + ("(CUDA max allocated)" if s.device == "cuda"
                        else "(peak RSS of a fresh process minus RSS before building)"))
    return "\n".join(lines)


def _layouts(choice: str) -> tuple[bool, ...]:
    return {"off": (False,), "on": (True,), "both": (False, True)}[choice]


def run(args: argparse.Namespace) -> int:
    settings = BenchmarkSettings(
        models=tuple(args.models), input_size=args.input, batches=tuple(args.batch),
        device=args.device, dtypes=tuple(args.dtype), channels_last=_layouts(args.channels_last),
        threads=args.threads, repeats=args.repeats, num_classes=args.classes,
        memory=not args.no_memory, fuse_bn=not args.no_fuse,
    )
    report = run_benchmark(settings)
    print(format_table(report))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "benchmark", help="parameters, GFLOPs, memory and frames/s of models (interleaved runs)")
    p.add_argument("--models", nargs="+", default=["mict_resnet18", "resnet3d_18"],
                   metavar="NAME", help=f"models to compare: {', '.join(all_model_names())}")
    p.add_argument("--input", type=parse_input_size, default=(16, 160, 160), metavar="TxHxW",
                   help="clip size (default 16x160x160)")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 8], help="batch sizes (1 8)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--dtype", nargs="+", choices=list(DTYPES), default=["fp32"],
                   help="weights and clip cast to each (default fp32)")
    p.add_argument("--channels-last", nargs="?", const="on", default="off",
                   choices=["off", "on", "both"],
                   help="channels-last layout: flag alone = on; 'both' measures both layouts")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--repeats", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--classes", type=int, default=101, help="number of classes (default 101)")
    p.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    p.add_argument("--no-fuse", action="store_true",
                   help="keep batch norms separate (default: folded into the convolutions)")
    p.add_argument("--json", metavar="FILE", help="also write the full report as JSON")
    p.set_defaults(func=run)

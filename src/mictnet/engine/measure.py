"""What a model costs: parameters, FLOPs, memory and inference speed — one module for every command.

``mict models`` (parameters, FLOPs), ``mict benchmark`` and ``benchmarks/bench_models.py`` (all of
it) and the cross-validation table (:func:`model_costs`) measure through these functions, so the
same model and input give the same frames/s everywhere.

**Speed.** Inference mode on random clips. Every configuration (model × dtype × layout × batch
norms folded or kept × batch) and one matrix multiply per measured dtype (the "practical peak")
are timed in interleaved rounds — one measurement of each per round — so drift in the machine's
load hits all of them equally; each is reported as the median and min–max over rounds. One
measurement repeats the call until it lasts ``min_time``. Low precision casts the weights and the
clip to the dtype (pure bf16/fp16 inference, not autocast). On a virtual machine the time the
hypervisor stole from it during the run (``cpu_steal_percent``) is recorded and, from 2%, said.

**Practical peak.** The denominator of ``fraction_of_peak`` is a *timed* n×n matrix multiply in
the same dtype (sgemm for fp32), not the hardware's theoretical peak: a model whose convolutions
beat that matmul shows more than 100%. n is the largest power of two up to 4096 (CPU) or 8192
(CUDA) whose product takes at most about :data:`PRODUCT_SECONDS` (see :func:`matmul_size`), so
the calibration stays bounded where a dtype is slow.

**Dtypes.** A dtype the device only emulates (bf16 on a CPU without AVX-512 BF16/AMX/ARM BF16 is
100-250x slower than fp32) is skipped with a one-line reason, unless asked for explicitly: then it
is timed, with a warning.

**Memory for one clip** (batch 1): on CUDA, ``torch.cuda.max_memory_allocated`` while building the
model and running one clip; on CPU, a fresh process (``multiprocessing`` spawn) builds the model
and runs one clip, and reports its peak resident memory (Linux ``VmHWM``, else ``getrusage``)
minus its resident memory before building. Both include the weights, the clip and the
activations; ``activation_mb`` is the part added by the forward pass alone.
"""

from __future__ import annotations

import gc
import logging
import math
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from ..models import build_model, fuse_conv_bn, list_models, to_channels_last
from .precision import (
    DTYPES,
    cpu_info,
    cpu_name,
    cpu_speedup,
    is_native,
    resolve_precision,
    torch_threads,
)
from .resolve import clip_spec

if TYPE_CHECKING:
    from .train_config import TrainConfig

log = logging.getLogger("mictnet")

DEFAULT_DTYPES = ("fp32", "bf16")  # the reduced ones only where the device runs them natively
MATMUL_MAX_SIZE = {"cpu": 4096, "cuda": 8192}
PRODUCT_SECONDS = 1.0  # the peak matmul is sized so that one product takes at most about this
COSTS_BATCH = 8  # the batch of the cross-validation table's frames/s
STEAL_NOTED = 2.0  # percent of CPU time stolen by the hypervisor from which the table says so


# ---------------------------------------------------------------- settings and results


@dataclass(frozen=True)
class BenchmarkSettings:
    """What to measure and how."""

    models: tuple[str, ...]
    input_size: tuple[int, int, int] = (16, 160, 160)  # frames, height, width
    batches: tuple[int, ...] = (1, 8)
    device: str = "cpu"
    dtypes: tuple[str, ...] = DEFAULT_DTYPES
    explicit_dtypes: bool = False  # time the dtypes the device only emulates too (with a warning)
    channels_last: tuple[bool, ...] = (False,)
    fuse_bn: tuple[bool, ...] = (True,)  # batch norms folded into the convolutions, or kept
    threads: int | None = None  # torch intra-op threads; None keeps torch's default
    repeats: int = 5  # interleaved rounds
    min_time: float = 0.3  # seconds per measurement (calls are repeated to reach it)
    num_classes: int = 101
    model_options: dict[str, Any] = field(default_factory=dict)  # build_model keywords
    memory: bool = True
    peak: bool = True  # time the practical peak (and report each model's fraction of it)

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in list_models()]
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; choose from {list_models()}")
        bad = [d for d in self.dtypes if d not in DTYPES]
        if bad:
            raise ValueError(f"unknown dtype(s) {bad}; choose from {list(DTYPES)}")
        if torch.device(self.device).type not in MATMUL_MAX_SIZE:
            raise ValueError(f"device must be cpu or cuda, got {self.device!r}")
        if self.device_type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("--device cuda asked for, but torch sees no CUDA device")
        if not self.models or not self.batches or self.repeats < 1 or min(self.batches) < 1:
            raise ValueError("need at least one model, positive batch sizes and repeats >= 1")

    @property
    def device_type(self) -> str:
        return torch.device(self.device).type


@dataclass
class ModelInfo:
    model: str
    params: int
    gflops: float  # per clip, 2 × multiply-accumulates (torch.utils.flop_counter)


@dataclass
class DtypeNote:
    """A dtype the device does not run natively: skipped, or timed because it was asked for."""

    dtype: str
    reason: str
    skipped: bool


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
    fused: bool  # batch norms folded into the convolutions
    batch: int
    frames_per_s: float | None  # median over rounds; None when the configuration failed
    frames_per_s_min: float | None = None
    frames_per_s_max: float | None = None
    samples: list[float] = field(default_factory=list)
    fraction_of_peak: float | None = None  # achieved FLOP/s ÷ timed matmul FLOP/s, same dtype
    error: str | None = None


@dataclass
class BenchmarkReport:
    machine: dict[str, str | int | float]
    settings: BenchmarkSettings
    models: list[ModelInfo]
    peaks: list[PeakResult]
    runs: list[RunResult]
    memory: list[MemoryResult]
    dtype_notes: list[DtypeNote] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def dtypes(self) -> list[str]:
        """The dtypes that were timed (the settings' minus the skipped ones)."""
        skipped = {n.dtype for n in self.dtype_notes if n.skipped}
        return [d for d in self.settings.dtypes if d not in skipped]

    def run(self, model: str, dtype: str, channels_last: bool, batch: int,
            fused: bool | None = None) -> RunResult:
        """The result of one configuration (``fused`` None: the settings' first choice)."""
        fused = self.settings.fuse_bn[0] if fused is None else fused
        key = (model, dtype, channels_last, fused, batch)
        for r in self.runs:
            if (r.model, r.dtype, r.channels_last, r.fused, r.batch) == key:
                return r
        raise KeyError(f"no run {model} {dtype} channels_last={channels_last} fused={fused} "
                       f"batch={batch}")


# ---------------------------------------------------------------- parameters, FLOPs, memory


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def input_channels(model: nn.Module) -> int:
    """The channels of ``model``'s input clips: its config's ``in_channels`` (3 without one)."""
    return getattr(getattr(model, "config", None), "in_channels", 3)


def count_flops(model: nn.Module, input_size: tuple[int, int, int]) -> int:
    """FLOPs (2 × multiply-accumulates) of one forward pass on one clip, by torch's counter."""
    clip = torch.zeros(1, input_channels(model), *input_size)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(clip)
    return counter.get_total_flops()


def model_info(name: str, input_size: tuple[int, int, int], num_classes: int = 101,
               **options: Any) -> ModelInfo:
    """Parameters and GFLOPs per clip of a registered model."""
    model = build_model(name, num_classes=num_classes, **options)
    return ModelInfo(name, count_parameters(model), count_flops(model, input_size) / 1e9)


def activation_bytes_per_clip(model: nn.Module, input_size: tuple[int, int, int],
                              batch: int = 2, device: torch.device | str = "cpu") -> float:
    """Bytes of the tensors a training forward pass keeps for the backward pass, per clip.

    Measured by autograd's saved-tensor hooks (each storage counted once; the input and the
    weights excluded), so the figure is the same on every device and allocator.
    """
    device = torch.device(device)
    model = model.to(device).train()
    clips = torch.randn(batch, input_channels(model), *input_size, device=device)
    not_activations = {clips.untyped_storage().data_ptr()}
    not_activations |= {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in not_activations:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(clips)
    return sum(seen.values()) / batch


def prepare_model(name: str, num_classes: int, dtype: str, channels_last: bool, device: str,
                  fuse_bn: bool = True, **options: Any) -> nn.Module:
    """``build_model(name, ...)`` in eval mode (batch norms folded unless ``fuse_bn`` is false),
    cast to ``dtype`` on ``device``, optionally channels-last."""
    model = build_model(name, num_classes=num_classes, **options).eval()
    if fuse_bn:
        fuse_conv_bn(model)
    model.to(device=device, dtype=DTYPES[dtype])
    return to_channels_last(model) if channels_last else model


def make_clip(batch: int, input_size: tuple[int, int, int], dtype: str, channels_last: bool,
              device: str, channels: int = 3) -> torch.Tensor:
    """A random ``batch×channels×T×H×W`` clip (channels-last-3d when asked)."""
    clip = torch.randn(batch, channels, *input_size, device=device).to(DTYPES[dtype])
    return clip.contiguous(memory_format=torch.channels_last_3d) if channels_last else clip


@dataclass(frozen=True)
class MemoryProbe:
    """One clip of one model, for :func:`clip_memory`."""

    model: str
    num_classes: int
    options: dict[str, Any]
    input_size: tuple[int, int, int]
    dtype: str
    channels_last: bool


def clip_memory(probe: MemoryProbe, device: str, threads: int) -> MemoryResult:
    """Peak memory for one clip (see the module docstring for what is measured)."""
    if torch.device(device).type == "cuda":
        mem = _cuda_memory(probe, device)
    else:
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            mem = pool.apply(cpu_memory_here, (probe, threads))
    return MemoryResult(probe.model, probe.dtype, probe.channels_last, *mem)


def cpu_memory_here(probe: MemoryProbe, threads: int) -> tuple[float, float]:
    """``(peak_mb, activation_mb)`` of one clip in *this* process (meant for a fresh one)."""
    torch.set_num_threads(threads)
    gc.collect()
    start = _rss_bytes()
    model = prepare_model(probe.model, probe.num_classes, probe.dtype, probe.channels_last,
                          "cpu", **probe.options)
    clip = make_clip(1, probe.input_size, probe.dtype, probe.channels_last, "cpu",
                     probe.options.get("in_channels", 3))
    gc.collect()
    ready = _rss_bytes()
    if not _reset_peak_rss():
        ready = _peak_rss_bytes()  # no reset: the forward pass must exceed the build's peak
    with torch.inference_mode():
        model(clip)
    peak = _peak_rss_bytes()
    return (peak - start) / 2**20, max(peak - ready, 0) / 2**20


def _cuda_memory(probe: MemoryProbe, device: str) -> tuple[float, float]:
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    start = torch.cuda.memory_allocated(device)
    model = prepare_model(probe.model, probe.num_classes, probe.dtype, probe.channels_last,
                          device, **probe.options)
    clip = make_clip(1, probe.input_size, probe.dtype, probe.channels_last, device,
                     probe.options.get("in_channels", 3))
    ready = torch.cuda.memory_allocated(device)
    with torch.inference_mode():
        model(clip)
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    del model, clip
    torch.cuda.empty_cache()
    return (peak - start) / 2**20, (peak - ready) / 2**20


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


# ---------------------------------------------------------------- dtypes and the practical peak


def dtype_reason(dtype: str, device: str) -> str | None:
    """Why ``device`` does not run ``dtype`` natively (timed by
    :func:`~mictnet.engine.precision.cpu_speedup` on the CPU); None where it does."""
    dev = torch.device(device)
    if dev.type == "cuda":
        native = is_native(DTYPES[dtype], dev)
        return None if native else f"{torch.cuda.get_device_name(dev)} has no native {dtype}"
    if is_native(DTYPES[dtype], dev):
        return None
    speed = cpu_speedup(DTYPES[dtype])
    return f"{cpu_name()} has no native {dtype} (its matmul runs at {speed:.2g}x fp32 speed)"


def check_dtypes(dtypes: Iterable[str], device: str, explicit: bool) -> list[DtypeNote]:
    """A note for each dtype ``device`` only emulates: skipped unless ``explicit``."""
    notes = []
    for dtype in dtypes:
        reason = dtype_reason(dtype, device)
        if reason is None:
            continue
        notes.append(DtypeNote(dtype, reason, skipped=not explicit))
        if explicit:
            log.warning("warning: timing %s although %s: this will be slow", dtype, reason)
    return notes


def matmul_size(product_seconds: Callable[[int], float], max_size: int,
                budget: float = PRODUCT_SECONDS, start: int = 256) -> int:
    """The largest power of two up to ``max_size`` whose n×n product takes at most ``budget``.

    Doubles n from ``start`` while 8× the time of the last product (the predicted cost of the
    next) fits, so no product — a slow, emulated dtype's included — takes much longer than
    ``budget`` (up to about 2× where small products run faster, as emulated bf16's do).
    """
    n = start
    elapsed = product_seconds(n)
    while 2 * n <= max_size and 8 * elapsed <= budget:
        n *= 2
        elapsed = product_seconds(n)
    return n


def _product_seconds(dtype: str, device: str) -> Callable[[int], float]:
    """Seconds of one n×n product in ``dtype`` on ``device``."""
    def seconds(n: int) -> float:
        a = torch.randn(n, n, device=device).to(DTYPES[dtype])
        b = torch.randn(n, n, device=device).to(DTYPES[dtype])
        _synchronize(device)
        begin = time.perf_counter()
        torch.mm(a, b)
        _synchronize(device)
        return time.perf_counter() - begin
    return seconds


def _matmul_timed(dtype: str, device: str) -> Timed:
    with torch.inference_mode():
        n = matmul_size(_product_seconds(dtype, device), MATMUL_MAX_SIZE[torch.device(device).type])
    a = torch.randn(n, n, device=device).to(DTYPES[dtype])
    b = torch.randn(n, n, device=device).to(DTYPES[dtype])
    return Timed(("matmul", dtype, n), lambda: torch.mm(a, b), 2.0 * n**3)


# ---------------------------------------------------------------- interleaved timing


@dataclass
class Timed:
    """One interleaved configuration: a callable, the work it does per call, its samples."""

    key: tuple
    call: Callable[[], object]
    work: float  # frames (models) or FLOPs (matmul) per call
    iters: int = 1
    samples: list[float] = field(default_factory=list)  # work per second
    error: str | None = None


def _synchronize(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def calibrate(timed: Timed, device: str, min_time: float, warmup: int = 1) -> None:
    """Warm up and choose how many calls make one measurement of at least ``min_time``;
    an error (a dtype the device cannot run) is recorded in ``timed.error``."""
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


def measure_once(timed: Timed, device: str) -> None:
    """Append one sample (work per second over ``timed.iters`` calls)."""
    _synchronize(device)
    start = time.perf_counter()
    for _ in range(timed.iters):
        timed.call()
    _synchronize(device)
    timed.samples.append(timed.work * timed.iters / (time.perf_counter() - start))


def time_interleaved(timed: list[Timed], device: str, rounds: int, min_time: float,
                     progress: bool = True) -> None:
    """Calibrate each item, then measure every working one once per round, round after round."""
    with torch.inference_mode():
        for t in tqdm(timed, desc="warm-up", disable=not progress, leave=False):
            calibrate(t, device, min_time)
        live = [t for t in timed if t.error is None]
        with tqdm(total=rounds * len(live), desc="timing", disable=not progress,
                  leave=False) as bar:
            for _ in range(rounds):
                for t in live:
                    measure_once(t, device)
                    bar.update()


# ---------------------------------------------------------------- the benchmark


def run_benchmark(settings: BenchmarkSettings, progress: bool = True) -> BenchmarkReport:
    """Measure every configuration of ``settings`` (see the module docstring)."""
    with torch_threads(settings.threads or torch.get_num_threads()):
        return _run(settings, torch.get_num_threads(), progress)


def _run(s: BenchmarkSettings, threads: int, progress: bool) -> BenchmarkReport:
    if s.device_type == "cuda":
        torch.backends.cudnn.benchmark = True
    notes = check_dtypes(s.dtypes, s.device, s.explicit_dtypes)
    report = BenchmarkReport(machine_description(s.device, threads), s, [], [], [], [], notes)
    ticks = cpu_ticks()
    report.models = [model_info(n, s.input_size, s.num_classes, **s.model_options)
                     for n in s.models]
    layouts = [(d, cl) for d in report.dtypes for cl in s.channels_last]
    if s.memory:
        probes = [MemoryProbe(n, s.num_classes, s.model_options, s.input_size, d, cl)
                  for n in s.models for d, cl in layouts]
        report.memory = [clip_memory(p, s.device, threads)
                         for p in tqdm(probes, desc="memory", disable=not progress, leave=False)]
    peaks = [_matmul_timed(d, s.device) for d in (report.dtypes if s.peak else [])]
    runs = _model_timed(s, layouts)
    time_interleaved(peaks + runs, s.device, s.repeats, s.min_time, progress)
    report.peaks = [_peak_result(t) for t in peaks if t.error is None]
    report.runs = [_run_result(t, report) for t in runs]
    if ticks and (after := cpu_ticks()) and after[1] > ticks[1]:
        report.machine["cpu_steal_percent"] = round(
            100 * (after[0] - ticks[0]) / (after[1] - ticks[1]), 1)
    return report


def cpu_ticks() -> tuple[int, int] | None:
    """``(steal, total)`` CPU ticks of the whole machine so far (Linux ``/proc/stat``; None
    elsewhere). Steal is the time the hypervisor gave this VM's CPUs to other guests."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if fields[0] != "cpu" or len(fields) < 9:
        return None
    ticks = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    return ticks[7], sum(ticks)


def _model_timed(s: BenchmarkSettings, layouts: list[tuple[str, bool]]) -> list[Timed]:
    timed = []
    for name in s.models:
        for dtype, cl in layouts:
            for fused in s.fuse_bn:
                model = prepare_model(name, s.num_classes, dtype, cl, s.device, fused,
                                      **s.model_options)
                for batch in s.batches:
                    clip = make_clip(batch, s.input_size, dtype, cl, s.device,
                                     s.model_options.get("in_channels", 3))
                    timed.append(Timed((name, dtype, cl, fused, batch),
                                       _forward(model, clip), float(batch * s.input_size[0])))
    return timed


def _forward(model: nn.Module, clip: torch.Tensor) -> Callable[[], object]:
    return lambda: model(clip)


def _peak_result(t: Timed) -> PeakResult:
    _, dtype, n = t.key
    gf = [v / 1e9 for v in t.samples]
    return PeakResult(dtype, n, statistics.median(gf), min(gf), max(gf))


def _run_result(t: Timed, report: BenchmarkReport) -> RunResult:
    name, dtype, cl, fused, batch = t.key
    if t.error is not None:
        return RunResult(name, dtype, cl, fused, batch, None, error=t.error)
    fps = statistics.median(t.samples)
    peak = {p.dtype: p.gflops_per_s for p in report.peaks}.get(dtype)
    gflops = next(i.gflops for i in report.models if i.model == name)
    fraction = gflops * fps / report.settings.input_size[0] / peak if peak else None
    return RunResult(name, dtype, cl, fused, batch, fps, min(t.samples), max(t.samples),
                     list(t.samples), fraction)


def machine_description(device: str, threads: int) -> dict[str, str | int]:
    """Device, CPU model and kernel family, thread count and library versions, for the record."""
    info: dict[str, str | int | float] = {
        "device": torch.device(device).type, "cpu": cpu_info()[0],
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_count": os.cpu_count() or 0, "threads": threads, "torch": torch.__version__,
        "python": platform.python_version(), "platform": platform.platform(),
    }
    if torch.device(device).type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


# ---------------------------------------------------------------- output


def format_table(report: BenchmarkReport) -> str:
    """The report as a plain-text table: one row per model × dtype × layout × batch norms."""
    s, m = report.settings, report.machine
    t, h, w = s.input_size
    lines = [
        f"{m['device']}: {m.get('gpu', m['cpu'])} ({m['cpu_capability']}), {m['threads']} threads, "
        f"torch {m['torch']}; input {t}x{h}x{w}; {s.repeats} interleaved rounds, "
        "frames/s median [min-max]",
    ]
    steal = m.get("cpu_steal_percent")
    if isinstance(steal, float) and steal >= STEAL_NOTED:
        lines.append(f"noisy: the hypervisor gave {steal:.0f}% of this machine's CPU time to "
                     "other guests during the run (steal, /proc/stat); compare the min-max")
    lines += [f"skipped {n.dtype}: {n.reason}; ask for it explicitly to time it"
              for n in report.dtype_notes if n.skipped]
    lines += [f"warning: {n.dtype} timed although {n.reason}"
              for n in report.dtype_notes if not n.skipped]
    if report.peaks:
        lines.append(
            "practical peak = a timed matmul, not the hardware's peak (%peak can exceed 100%): "
            + ", ".join(f"{p.dtype} {p.matmul_size}² {p.gflops_per_s:.0f} GFLOP/s "
                        f"[{p.gflops_per_s_min:.0f}-{p.gflops_per_s_max:.0f}]"
                        for p in report.peaks))
    header = (f"{'model':<14} {'dtype':<5} {'layout':<6} {'BN':<4} {'params':>7} {'GFLOPs':>7} "
              f"{'mem MB':>7}")
    for b in s.batches:
        header += f" | {f'batch {b} frames/s':>22} {'%peak':>5}"
    lines += [header, "-" * len(header)]
    lines += [_table_row(report, name, d, cl, fused) for name in s.models for d in report.dtypes
              for cl in s.channels_last for fused in s.fuse_bn]
    lines += [f"failed: {r.model} {r.dtype} batch {r.batch}: {r.error}"
              for r in report.runs if r.error]
    if report.memory:
        lines.append("mem MB: one clip, weights + clip + activations "
                     + ("(CUDA max allocated)" if s.device_type == "cuda"
                        else "(peak RSS of a fresh process minus RSS before building)"))
    if len(s.fuse_bn) > 1 or not s.fuse_bn[0]:
        lines.append("BN: fold = batch norms folded into the convolutions, keep = as built")
    return "\n".join(lines)


def _table_row(report: BenchmarkReport, name: str, dtype: str, cl: bool, fused: bool) -> str:
    info = next(i for i in report.models if i.model == name)
    mem = next((r for r in report.memory if (r.model, r.dtype, r.channels_last)
                == (name, dtype, cl)), None)
    row = (f"{name:<14} {dtype:<5} {'CL' if cl else 'NCDHW':<6} {'fold' if fused else 'keep':<4} "
           f"{info.params / 1e6:>6.1f}M {info.gflops:>7.1f} "
           f"{f'{mem.peak_mb:.0f}' if mem else '-':>7}")
    for b in report.settings.batches:
        r = report.run(name, dtype, cl, b, fused)
        if r.frames_per_s is None:
            row += f" | {'failed':>22} {'-':>5}"
            continue
        fps = f"{r.frames_per_s:.1f} [{r.frames_per_s_min:.1f}-{r.frames_per_s_max:.1f}]"
        frac = "-" if r.fraction_of_peak is None else f"{100 * r.fraction_of_peak:.0f}%"
        row += f" | {fps:>22} {frac:>5}"
    return row


# ---------------------------------------------------------------- the cross-validation table


def model_costs(cfg: TrainConfig, num_classes: int, device: torch.device) -> dict[str, Any]:
    """Parameters, training activation memory per clip and inference frames/s of ``cfg``.

    The frames/s is :func:`run_benchmark`'s (batch :data:`COSTS_BATCH`, batch norms folded, in
    the run's precision where the device runs it natively, else fp32): ``mict benchmark
    --models NAME --input TxSxS --batch 8 --dtype DTYPE`` reports the same figure.
    """
    size = clip_spec(cfg).input_size
    model = build_model(cfg.model.name, num_classes, **cfg.model.options())
    dtype = resolve_precision(cfg.runtime.amp, device).name
    if dtype_reason(dtype, str(device)) is not None:
        dtype = "fp32"
    settings = BenchmarkSettings(
        models=(cfg.model.name,), input_size=size, batches=(COSTS_BATCH,), device=str(device),
        dtypes=(dtype,), num_classes=num_classes, model_options=cfg.model.options(),
        repeats=3, memory=False, peak=False)
    [run] = run_benchmark(settings, progress=False).runs
    return {
        "params_m": count_parameters(model) / 1e6,
        "memory_mb_per_clip": activation_bytes_per_clip(model, size, device=device) / 2**20,
        "frames_per_s": run.frames_per_s or 0.0,
        "frames_per_s_dtype": dtype,
        "frames_per_s_batch": COSTS_BATCH,
    }

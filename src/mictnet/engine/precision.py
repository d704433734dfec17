"""Which precision a device runs natively, and the autocast dtype that ``amp`` modes resolve to.

On the CPU, bf16 is fast only where the hardware multiplies it natively (AVX-512 BF16, AMX, ARM
BF16); elsewhere PyTorch emulates it 100-250x slower than fp32. We decide by timing what actually
runs — a small bf16 and fp32 matrix multiply, once per process — rather than by a list of CPU
flags: flags miss what oneDNN really dispatches to (``ONEDNN_MAX_CPU_ISA``, hypervisors that
hide features, new CPUs), while a 256x256 product answers in milliseconds on any machine.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch

log = logging.getLogger("mictnet")

AMP_MODES = ("auto", "none", "bf16", "fp16")
DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16,
                                  "fp16": torch.float16}
# A reduced dtype counts as native on the CPU when its matmul is at least this much faster.
NATIVE_SPEEDUP = 1.2


@dataclass(frozen=True)
class Precision:
    """The autocast dtype of a run (None: full fp32) and why it was chosen."""

    dtype: torch.dtype | None
    reason: str

    @property
    def name(self) -> str:
        return dtype_name(self.dtype)


def dtype_name(dtype: torch.dtype | None) -> str:
    """``torch.bfloat16`` -> ``"bf16"``; None (no autocast) -> ``"fp32"``."""
    if dtype is None:
        return "fp32"
    return next(name for name, d in DTYPES.items() if d == dtype)


def cpu_name() -> str:
    """``"cpu AVX2"``, ``"cpu AVX512"``, ...: the kernel family PyTorch dispatches to."""
    return f"cpu {torch.backends.cpu.get_cpu_capability()}"


def _matmul_seconds(dtype: torch.dtype, size: int, reps: int) -> float:
    """Best time of one ``size``² product in ``dtype`` over 3 rounds of ``reps`` (0: one
    product, no warm-up)."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    if not reps:
        start = time.perf_counter()
        a @ b
        return time.perf_counter() - start
    a @ b  # warm-up: kernel selection, packing buffers
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = min(best, (time.perf_counter() - start) / reps)
    return best


@functools.cache
def cpu_speedup(dtype: torch.dtype, size: int = 256) -> float:
    """Matmul speed of ``dtype`` relative to fp32 on this CPU (timed once per process).

    An emulated dtype is detected from a single product (tens of milliseconds at worst), so
    the measurement never costs more than a fraction of a second. It runs on one thread: with
    two on a busy core, each small fp32 product can wait a scheduler slice for the second
    thread and look as slow as an emulated one (seen on a shared 2-core machine: an emulated
    bf16 at 1.2x "fp32 speed" instead of 0.02x)."""
    if dtype == torch.float32:
        return 1.0
    with torch_threads(1), torch.inference_mode():
        fp32 = _matmul_seconds(torch.float32, size, 8)
        once = _matmul_seconds(dtype, size, 0)
        if once > 20 * fp32:  # emulated: not worth timing any further
            return fp32 / once
        return fp32 / _matmul_seconds(dtype, size, 8)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads; restore the count after."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def is_native(dtype: torch.dtype | None, device: torch.device) -> bool:
    """Whether ``device`` runs ``dtype`` natively (for the CPU: faster than fp32)."""
    if dtype is None or dtype == torch.float32:
        return True
    if device.type == "cuda":
        return dtype != torch.bfloat16 or torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return cpu_speedup(dtype) >= NATIVE_SPEEDUP
    return False


def resolve_precision(mode: str, device: torch.device) -> Precision:
    """The autocast dtype for ``amp`` mode ``mode`` on ``device``, with the reason.

    ``auto``: on CUDA bf16 where supported, else fp16; on the CPU bf16 where it runs natively
    and faster than fp32, else fp32. An explicit dtype the device only emulates is honoured
    with a warning that says how much slower it is."""
    if mode not in AMP_MODES:
        raise ValueError(f"amp must be one of {', '.join(AMP_MODES)}, got {mode!r}")
    if mode == "none":
        return Precision(None, "amp none: fp32")
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        if mode == "auto":
            bf16 = torch.cuda.is_bf16_supported()
            return Precision(torch.bfloat16 if bf16 else torch.float16,
                             f"{name}: {'bf16' if bf16 else 'no bf16: fp16'}")
        return Precision(DTYPES[mode], f"{name}: {mode} requested")
    if device.type != "cpu":
        return Precision(None, f"{device.type}: fp32")
    if mode == "auto":
        speedup = cpu_speedup(torch.bfloat16)
        if speedup >= NATIVE_SPEEDUP:
            return Precision(torch.bfloat16,
                             f"{cpu_name()}, native bf16 ({speedup:.1f}x fp32 matmul): bf16")
        return Precision(None, f"{cpu_name()}, no native bf16: fp32")
    dtype = DTYPES[mode]
    if not is_native(dtype, device):
        slower = 1 / cpu_speedup(dtype)
        log.warning("%s is emulated on this CPU (%s): about %.0fx slower than fp32; "
                    "--amp auto picks fp32 here", mode, cpu_name(), slower)
        return Precision(dtype, f"{cpu_name()}: {mode} requested (emulated, ~{slower:.0f}x "
                                "slower than fp32)")
    return Precision(dtype, f"{cpu_name()}: {mode} requested")


def resolve_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype (None: full precision) of ``mode`` on ``device``."""
    return resolve_precision(mode, device).dtype

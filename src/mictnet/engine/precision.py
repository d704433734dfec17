"""Which precision a device runs natively, and the autocast dtype that ``amp`` modes resolve to.

On the CPU, bf16 is fast only where the hardware multiplies it natively (AVX-512 BF16, AMX, ARM
BF16); elsewhere PyTorch emulates it 100-250x slower than fp32. Two readings decide, and both are
logged: what the library reports (oneDNN's ``torch.ops.mkldnn._is_mkldnn_bf16_supported()``,
which reads the CPU's flags) and a timing of what actually runs (flags miss ``ONEDNN_MAX_CPU_ISA``
caps, hypervisors that hide features, new CPUs). The timing is robust to a busy machine: the
dtype and fp32 are timed on the same thread in interleaved rounds after a warm-up (a first
product pays for JIT-compiling the kernels: tens of milliseconds with AMX), and the best round
of each is compared, so load slows both alike and the quietest moment decides. The reading is
cached per machine (CPU model, kernel caps, torch version) in ``~/.cache/mictnet/precision.json``
(``MICTNET_PRECISION_CACHE``: another file, or ``off``), so every process of a study sees the same
answer.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

log = logging.getLogger("mictnet")

AMP_MODES = ("auto", "none", "bf16", "fp16")
DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16,
                                  "fp16": torch.float16}
# A reduced dtype counts as native on the CPU when its matmul is at least this much faster.
NATIVE_SPEEDUP = 1.2
# Slower than this after a warm-up and two rounds: emulated, not worth timing further.
EMULATED_BELOW = 1 / 20
CACHE_ENV = "MICTNET_PRECISION_CACHE"
# The environment that changes which kernels run, part of the cache key.
KERNEL_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA",
              "ONEDNN_DEFAULT_FPMATH_MODE")


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


@dataclass(frozen=True)
class CpuReading:
    """What this CPU does with a reduced dtype: the library's report (None: it cannot say) and
    the timed speed of its matmul relative to fp32."""

    library: bool | None
    speedup: float
    cached: bool = False

    @property
    def native(self) -> bool:
        return self.library is not False and self.speedup >= NATIVE_SPEEDUP

    def describe(self, dtype: str) -> str:
        """``"4.0x fp32 matmul, oneDNN: bf16 instructions"`` (``cached`` when read back)."""
        timed = f"{self.speedup:.2g}x fp32 matmul{', cached' if self.cached else ''}"
        if self.library is None:
            return timed
        return f"{timed}; oneDNN: {'' if self.library else 'no '}{dtype} instructions"


def library_supports(dtype: torch.dtype) -> bool | None:
    """Whether oneDNN reports native instructions for ``dtype`` on this CPU (None: unknown)."""
    check = {torch.bfloat16: "_is_mkldnn_bf16_supported",
             torch.float16: "_is_mkldnn_fp16_supported"}.get(dtype)
    try:
        return bool(getattr(torch.ops.mkldnn, check)()) if check else None
    except (AttributeError, RuntimeError):
        return None


def _products_seconds(a: torch.Tensor, b: torch.Tensor, reps: int) -> float:
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    return (time.perf_counter() - start) / reps


def time_speedup(dtype: torch.dtype, size: int = 256, rounds: int = 60, reps: int = 2) -> float:
    """Matmul speed of ``dtype`` relative to fp32, robust to a busy machine.

    Both run on one thread (with two on a busy core each product can wait a scheduler slice
    for the second thread), after a warm-up, in ``rounds`` interleaved rounds of ``reps``
    ``size``² products; the best round of each is compared. An emulated dtype shows after the
    warm-up and two rounds of one product, so it costs well under a second."""
    with torch_threads(1), torch.inference_mode():
        a32, b32 = torch.randn(size, size), torch.randn(size, size)
        a, b = a32.to(dtype), b32.to(dtype)
        for _ in range(2):  # kernel selection and JIT, packing buffers
            fp32_warm, warm = _products_seconds(a32, b32, 1), _products_seconds(a, b, 1)
        slow = warm * EMULATED_BELOW > fp32_warm
        best32 = best = float("inf")
        for i in range(rounds):
            best32 = min(best32, _products_seconds(a32, b32, reps))
            best = min(best, _products_seconds(a, b, 1 if slow else reps))
            if slow and i >= 1 and best32 / best < EMULATED_BELOW:
                break
    return best32 / best


def cpu_info() -> tuple[str, set[str]]:
    """The CPU's model name and instruction-set flags, from ``/proc/cpuinfo`` where there is
    one (elsewhere the platform's processor name and no flags)."""
    model, flags = "", set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "model name" and not model:
                model = value
            elif key in ("flags", "Features") and not flags:
                flags = set(value.split())
    return model or platform.processor() or platform.machine(), flags


def machine_key() -> str:
    """What decides which kernels run: the CPU (model and flags), PyTorch's kernel family,
    the kernel caps in the environment, the torch version."""
    model, flags = cpu_info()
    digest = hashlib.sha256(" ".join(sorted(flags)).encode()).hexdigest()[:12]
    caps = [f"{k}={os.environ[k]}" for k in KERNEL_ENV if os.environ.get(k)]
    return " | ".join([model, f"{len(flags)} flags {digest}", cpu_name(),
                       f"torch {torch.__version__}", *caps])


def cache_path() -> Path | None:
    """The file of cached CPU readings (None: caching is off)."""
    value = os.environ.get(CACHE_ENV, "")
    if value.lower() == "off":
        return None
    if value:
        return Path(value)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mictnet" / "precision.json"


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, entries: dict) -> None:
    """Replace the cache file atomically; a cache that cannot be written is only skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".precision-",
                                         suffix=".tmp", delete=False) as tmp:
            json.dump(entries, tmp, indent=1, sort_keys=True)
        os.replace(tmp.name, path)
    except OSError as error:
        log.debug("precision cache %s not written: %s", path, error)


@functools.cache
def cpu_reading(dtype: torch.dtype) -> CpuReading:
    """The reading of ``dtype`` on this CPU: from the machine's cache, else measured (and
    cached). Read once per process."""
    if dtype == torch.float32:
        return CpuReading(True, 1.0)
    name, path, key = dtype_name(dtype), cache_path(), machine_key()
    entries = _read_cache(path) if path else {}
    cached = entries.get(key, {}).get(name)
    if isinstance(cached, dict) and isinstance(cached.get("speedup"), (int, float)):
        return CpuReading(cached.get("library"), float(cached["speedup"]), cached=True)
    reading = CpuReading(library_supports(dtype), time_speedup(dtype))
    if path:
        entries = _read_cache(path)  # another process may have written since
        entries.setdefault(key, {})[name] = {
            "library": reading.library, "speedup": round(reading.speedup, 4),
            "measured": time.strftime("%Y-%m-%d %H:%M:%S")}
        _write_cache(path, entries)
    return reading


def cpu_speedup(dtype: torch.dtype) -> float:
    """Matmul speed of ``dtype`` relative to fp32 on this CPU (see :func:`cpu_reading`)."""
    return cpu_reading(dtype).speedup


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
    """Whether ``device`` runs ``dtype`` natively (for the CPU: reported and faster than fp32)."""
    if dtype is None or dtype == torch.float32:
        return True
    if device.type == "cuda":
        return dtype != torch.bfloat16 or torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return cpu_reading(dtype).native
    return False


def resolve_precision(mode: str, device: torch.device) -> Precision:
    """The autocast dtype for ``amp`` mode ``mode`` on ``device``, with the reason.

    ``auto``: on CUDA bf16 where supported, else fp16; on the CPU bf16 where it runs natively
    and faster than fp32, else fp32 (the reason gives the measured ratio either way). An
    explicit dtype the device only emulates is honoured with a warning that says how much
    slower it is."""
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
        reading = cpu_reading(torch.bfloat16)
        if reading.native:
            return Precision(torch.bfloat16,
                             f"{cpu_name()}, native bf16 ({reading.describe('bf16')}): bf16")
        return Precision(None, f"{cpu_name()}, no native bf16 ({reading.describe('bf16')}): fp32")
    dtype = DTYPES[mode]
    if not is_native(dtype, device):
        slower = 1 / cpu_speedup(dtype)
        log.warning("%s is emulated on this CPU (%s): about %.0fx slower than fp32; "
                    "--amp auto picks fp32 here", mode, cpu_name(), slower)
        return Precision(dtype, f"{cpu_name()}: {mode} requested (emulated, ~{slower:.0f}x "
                                "slower than fp32)")
    return Precision(dtype, f"{cpu_name()}: {mode} requested")


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` on ``device``'s type; a no-op for None (full precision)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def resolve_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype (None: full precision) of ``mode`` on ``device``."""
    return resolve_precision(mode, device).dtype

"""``amp: auto`` picks what the hardware runs natively, the same on a busy machine as on an idle
one; the reading is cached per machine; an explicit emulated dtype warns."""

import contextlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import torch

from mictnet.engine import precision
from mictnet.engine.precision import (
    CpuReading,
    cpu_reading,
    cpu_speedup,
    is_native,
    resolve_amp,
    resolve_precision,
    time_speedup,
)

CPU = torch.device("cpu")


@pytest.fixture
def bf16_speedup(monkeypatch):
    """Pretend the CPU's bf16 matmul runs at a given multiple of fp32."""

    def set_speedup(value: float, library: bool | None = True) -> None:
        monkeypatch.setattr(precision, "cpu_reading", lambda dtype: (
            CpuReading(True, 1.0) if dtype == torch.float32 else CpuReading(library, value)))
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")

    return set_speedup


def test_auto_on_a_cpu_without_native_bf16_is_fp32(bf16_speedup):
    bf16_speedup(0.01)
    chosen = resolve_precision("auto", CPU)
    assert chosen.dtype is None and chosen.name == "fp32"
    assert chosen.reason == ("cpu AVX2, no native bf16 (0.01x fp32 matmul; oneDNN: bf16 "
                             "instructions): fp32")


def test_auto_on_a_cpu_with_native_bf16_is_bf16(bf16_speedup):
    bf16_speedup(2.0)
    chosen = resolve_precision("auto", CPU)
    assert chosen.dtype == torch.bfloat16
    assert "native bf16 (2x fp32 matmul; oneDNN: bf16 instructions): bf16" in chosen.reason


def test_fast_but_not_reported_by_the_library_is_not_chosen(bf16_speedup):
    bf16_speedup(3.0, library=False)
    chosen = resolve_precision("auto", CPU)
    assert chosen.dtype is None
    assert chosen.reason.endswith("(3x fp32 matmul; oneDNN: no bf16 instructions): fp32")
    bf16_speedup(3.0, library=None)  # a library that cannot say: the timing decides
    assert resolve_amp("auto", CPU) == torch.bfloat16


def test_native_but_not_faster_is_not_chosen(bf16_speedup):
    bf16_speedup(1.05)
    assert resolve_amp("auto", CPU) is None


def test_explicit_emulated_bf16_runs_with_a_warning(bf16_speedup, caplog):
    bf16_speedup(1 / 120)
    with caplog.at_level(logging.WARNING, logger="mictnet"):
        chosen = resolve_precision("bf16", CPU)
    assert chosen.dtype == torch.bfloat16
    assert "bf16 is emulated on this CPU (cpu AVX2): about 120x slower than fp32" in caplog.text
    assert "emulated" in chosen.reason


def test_none_and_bad_modes():
    assert resolve_precision("none", CPU).dtype is None
    with pytest.raises(ValueError, match="amp must be one of auto, none, bf16, fp16"):
        resolve_precision("fp8", CPU)


def test_cuda_auto_prefers_bf16_else_fp16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "GPU")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert resolve_amp("auto", torch.device("cuda", 0)) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    chosen = resolve_precision("auto", torch.device("cuda", 0))
    assert chosen.dtype == torch.float16 and chosen.reason == "GPU: no bf16: fp16"


def test_the_real_cpu_gets_a_consistent_answer():
    """No mock: whatever this CPU is, auto picks bf16 exactly where bf16 is native, and the
    measurement (cached per process) is quick even where bf16 is emulated."""
    speedup = cpu_speedup(torch.bfloat16)
    assert speedup > 0 and cpu_speedup(torch.bfloat16) == speedup
    chosen = resolve_precision("auto", CPU)
    reading = cpu_reading(torch.bfloat16)
    assert (chosen.dtype == torch.bfloat16) == is_native(torch.bfloat16, CPU) == reading.native
    assert reading.native == (reading.library is not False
                              and speedup >= precision.NATIVE_SPEEDUP)
    assert chosen.reason.startswith(f"cpu {torch.backends.cpu.get_cpu_capability()}")
    assert f"{speedup:.2g}x fp32 matmul" in chosen.reason  # the measured figure, either way
    start = time.perf_counter()
    time_speedup(torch.bfloat16)
    assert time.perf_counter() - start < 2.0


@contextlib.contextmanager
def busy_cpu() -> Iterator[None]:
    """Every core kept busy by another process for the duration of the block."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
             for _ in range(os.cpu_count() or 2)]
    try:
        time.sleep(0.3)
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_a_busy_machine_reads_as_an_idle_one():
    """The decision and the timing under full load on every core: bf16 is read as native or
    not as when idle, and fp32 against itself reads as equal (a single cold product, as timed
    before, read 2-10x off under such load)."""
    idle = time_speedup(torch.bfloat16)
    with busy_cpu():
        loaded = [time_speedup(torch.bfloat16) for _ in range(5)]
        itself = [time_speedup(torch.float32) for _ in range(5)]
    native = idle >= precision.NATIVE_SPEEDUP
    assert all((s >= precision.NATIVE_SPEEDUP) == native for s in loaded), (idle, loaded)
    assert all(1 / precision.NATIVE_SPEEDUP < s < precision.NATIVE_SPEEDUP for s in itself), \
        itself


def test_the_reading_is_cached_per_machine(tmp_path, monkeypatch):
    cache = tmp_path / "precision.json"
    monkeypatch.setenv(precision.CACHE_ENV, str(cache))
    cpu_reading.cache_clear()
    try:
        first = cpu_reading(torch.bfloat16)
        entry = json.loads(cache.read_text())[precision.machine_key()]["bf16"]
        assert not first.cached and entry["speedup"] == round(first.speedup, 4)
        cpu_reading.cache_clear()  # a new process reads it back
        again = cpu_reading(torch.bfloat16)
        assert again.cached and again.native == first.native
        assert "cached" in resolve_precision("auto", CPU).reason
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "SSE41")  # other kernels: another key
        assert precision.machine_key() not in json.loads(cache.read_text())
        cache.write_text("{not json")  # a damaged cache is measured anew and rewritten
        cpu_reading.cache_clear()
        assert not cpu_reading(torch.bfloat16).cached
        assert precision.machine_key() in json.loads(cache.read_text())
        monkeypatch.setenv(precision.CACHE_ENV, "off")
        assert precision.cache_path() is None
    finally:
        cpu_reading.cache_clear()

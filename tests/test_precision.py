"""``amp: auto`` picks what the hardware runs natively; an explicit emulated dtype warns."""

import logging

import pytest
import torch

from mictnet.engine import precision
from mictnet.engine.precision import cpu_speedup, is_native, resolve_amp, resolve_precision

CPU = torch.device("cpu")


@pytest.fixture
def bf16_speedup(monkeypatch):
    """Pretend the CPU's bf16 matmul runs at a given multiple of fp32."""

    def set_speedup(value: float) -> None:
        monkeypatch.setattr(precision, "cpu_speedup", lambda dtype, size=256: (
            1.0 if dtype == torch.float32 else value))
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")

    return set_speedup


def test_auto_on_a_cpu_without_native_bf16_is_fp32(bf16_speedup):
    bf16_speedup(0.01)
    chosen = resolve_precision("auto", CPU)
    assert chosen.dtype is None and chosen.name == "fp32"
    assert chosen.reason == "cpu AVX2, no native bf16: fp32"


def test_auto_on_a_cpu_with_native_bf16_is_bf16(bf16_speedup):
    bf16_speedup(2.0)
    chosen = resolve_precision("auto", CPU)
    assert chosen.dtype == torch.bfloat16
    assert "native bf16 (2.0x fp32 matmul): bf16" in chosen.reason


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
    assert (chosen.dtype == torch.bfloat16) == is_native(torch.bfloat16, CPU)
    assert (chosen.dtype == torch.bfloat16) == (speedup >= precision.NATIVE_SPEEDUP)
    assert chosen.reason.startswith(f"cpu {torch.backends.cpu.get_cpu_capability()}")

"""The CUDA paths: AMP, channels-last, GPU checkpoints, torch.compile and DDP over NCCL.

Every test is marked ``cuda`` and skips without a GPU; ``pytest -m cuda`` (and
``benchmarks/gpu_check.py``) runs them where one is lent.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mictnet.engine.checkpoint import CheckpointMeta, load_checkpoint, load_model, save_checkpoint
from mictnet.models.registry import build_model

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

NUM_CLASSES = 5
SHAPE = (2, 3, 8, 64, 64)  # batch, channels, frames, height, width


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("mict_resnet18", NUM_CLASSES).cuda()


def _clip() -> torch.Tensor:
    return torch.randn(*SHAPE, generator=torch.Generator().manual_seed(1)).cuda()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_forward_backward(dtype: torch.dtype) -> None:
    if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    model = _model().train()
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    with torch.autocast("cuda", dtype=dtype):
        logits = model(_clip())
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1], device="cuda"))
    assert logits.dtype == dtype
    scaler.scale(loss).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_channels_last_matches_default_layout() -> None:
    model = _model().eval()
    clip = _clip()
    with torch.no_grad():
        expected = model(clip)
        model = model.to(memory_format=torch.channels_last_3d)
        got = model(clip.contiguous(memory_format=torch.channels_last_3d))
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-3)


def test_checkpoint_saved_on_gpu_loads_on_cpu(tmp_path: Path) -> None:
    model = _model().eval()
    meta = CheckpointMeta(spec=model.spec, classes=[f"c{i}" for i in range(NUM_CLASSES)],
                          input_size=SHAPE[2:])
    save_checkpoint(tmp_path / "gpu.pt", model, meta)
    ckpt = load_checkpoint(tmp_path / "gpu.pt")
    assert all(t.device.type == "cpu" for t in ckpt["state_dict"].values())
    cpu_model, _ = load_model(tmp_path / "gpu.pt", device="cpu")
    clip = _clip()
    with torch.no_grad():
        torch.testing.assert_close(cpu_model(clip.cpu()), model(clip).cpu(),
                                   rtol=1e-3, atol=1e-3)


def test_compile_matches_eager() -> None:
    model = _model().eval()
    clip = _clip()
    with torch.no_grad():
        expected = model(clip)
        got = torch.compile(model)(clip)
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-3)


def test_ddp_nccl_one_gpu(tmp_path: Path) -> None:
    if not torch.distributed.is_nccl_available():
        pytest.skip("torch.distributed has no NCCL")
    data, run = tmp_path / "synth", tmp_path / "run"
    mict = [sys.executable, "-m", "mictnet.cli"]
    subprocess.run([*mict, "synth", str(data), "--classes", "3", "--groups", "3",
                    "--clips-per-group", "1", "--size", "32x32"], check=True, timeout=120)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc-per-node", "1", "-m", "mictnet.cli"]
    proc = subprocess.run([*launcher, "train", "--preset", "demo-quick", "--root",
                           str(data / "UCF-101"), "--split", "1", "--out", str(run),
                           "--device", "cuda", "--epochs", "1", "--workers", "1",
                           "--no-progress"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["training_state"]["world_size"] == 1
    assert not any(k.startswith("module.") for k in ckpt["state_dict"])

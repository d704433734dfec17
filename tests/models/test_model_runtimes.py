"""The models under torch.compile, channels-last, bf16 autocast on CPU and batch norms folded
(ONNX export: ``tests/serve/test_export.py``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch

from mictnet.models import build_model, fuse_conv_bn, to_channels_last


@pytest.fixture(scope="module")
def mict_and_clip():
    torch.manual_seed(0)
    model = build_model("mict_resnet18", num_classes=5).eval()
    clip = torch.randn(2, 3, 16, 64, 64)
    with torch.no_grad():
        reference = model(clip)
    return model, clip, reference


@pytest.mark.parametrize("name", ["mict_resnet18", "resnet3d_18", "resnet2d_18"])
def test_channels_last_gives_the_same_logits(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=5).eval()
    clip = torch.randn(2, 3, 16, 64, 64)
    with torch.no_grad():
        reference = model(clip)
        to_channels_last(model)
        out = model(clip.contiguous(memory_format=torch.channels_last_3d))
    torch.testing.assert_close(out, reference, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ["mict_resnet18", "resnet3d_18"])
def test_bf16_autocast_on_cpu_is_close_to_fp32(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=5).eval()
    clip = torch.randn(1, 3, 8, 64, 64)  # small: bf16 is emulated (slow) on many CPUs
    with torch.no_grad():
        reference = model(clip)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(clip)
    assert out.dtype == torch.bfloat16
    scale = reference.abs().max()
    assert (out.float() - reference).abs().max() < 0.05 * scale + 0.05


def test_bf16_training_step_on_cpu():
    torch.manual_seed(0)
    model = build_model("mict_resnet18", num_classes=3).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = torch.nn.functional.cross_entropy(
            model(torch.randn(2, 3, 8, 32, 32)), torch.tensor([0, 2])
        )
    loss.backward()
    assert torch.isfinite(loss) and model.mict3d.conv.weight.grad.abs().sum() > 0


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="torch.compile's CPU backend needs a C compiler")
def test_torch_compile_matches_eager(mict_and_clip):
    model, clip, reference = mict_and_clip
    compiled = torch.compile(model)
    with torch.no_grad():
        torch.testing.assert_close(compiled(clip), reference, atol=1e-4, rtol=1e-4)


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="torch.compile's CPU backend needs a C compiler")
@pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() != "AVX512",
                    reason="an x86 CPU with AVX-512 (where the native kernels are AVX2, "
                           "test_torch_compile_matches_eager compiles them)")
def test_torch_compile_matches_eager_with_avx2_kernels(tmp_path):
    """What an AVX2-only CPU compiles: the kernels capped in a fresh process, with its own
    inductor cache (the cache key ignores the cap: kernels compiled uncapped and loaded capped,
    or the other way round, give garbage or abort)."""
    code = (
        "import torch\n"
        "from mictnet.models import build_model\n"
        "assert torch.backends.cpu.get_cpu_capability() == 'AVX2'\n"
        "torch.manual_seed(0)\n"
        "model = build_model('mict_resnet18', num_classes=5).eval()\n"
        "clip = torch.randn(2, 3, 16, 64, 64)\n"
        "with torch.no_grad():\n"
        "    torch.testing.assert_close(torch.compile(model)(clip), model(clip), atol=1e-4,"
        " rtol=1e-4)\n"
    )
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
           "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize("name", ["mict_resnet18", "resnet3d_18", "resnet2d_18"])
def test_fused_batch_norms_give_the_same_logits(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=5)
    model.train()(torch.randn(4, 3, 8, 32, 32))  # non-trivial running statistics
    model.eval()
    clip = torch.randn(2, 3, 16, 64, 64)
    with torch.no_grad():
        reference = model(clip)
        fused = fuse_conv_bn(model)
        norms = (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)
        assert not any(isinstance(m, norms) for m in fused.modules())
        torch.testing.assert_close(fused(clip), reference, atol=1e-4, rtol=1e-4)
    with pytest.raises(RuntimeError, match="eval mode"):
        fuse_conv_bn(build_model(name, num_classes=5))

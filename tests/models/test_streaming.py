"""Incremental MiCT-ResNet inference: per-step logits equal the offline pass, memory stays flat."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mictnet.models import MiCTConfig, MiCTResNet, build_model
from mictnet.models.streaming import StreamingModel, step_logits


def tiny_mict(temporal_stride: int = 16, first_kernel_depth: int = 7, block: str = "basic",
              layers: tuple[int, int, int, int] = (1, 1, 1, 1)) -> MiCTResNet:
    """A MiCT-ResNet in eval mode whose batch norms are not the identity (some scales < 0)."""
    torch.manual_seed(0)
    model = MiCTResNet(MiCTConfig(block, layers, 5, temporal_stride, first_kernel_depth)).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d | nn.BatchNorm3d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(-1.0, 1.0)
            m.bias.data.uniform_(-0.1, 0.1)
    return model


def streamed(model: nn.Module, x: torch.Tensor, chunk: int) -> torch.Tensor:
    stream = StreamingModel(model)
    outs = [stream.push(x[:, :, i:i + chunk]) for i in range(0, x.shape[2], chunk)]
    return torch.cat([*outs, stream.flush()], dim=1)


@pytest.mark.parametrize(("temporal_stride", "depth"), [(16, 7), (16, 5), (16, 3), (4, 7),
                                                        (4, 3)])
@pytest.mark.parametrize("frames", [1, 6, 23, 40])
def test_streamed_steps_equal_the_offline_pass(temporal_stride, depth, frames):
    model = tiny_mict(temporal_stride, depth)
    x = torch.randn(2, 3, frames, 16, 16)
    with torch.inference_mode():
        expected = step_logits(model, x)
        assert expected.shape == (2, -(-frames // temporal_stride), 5)
        for chunk in (1, 3, 16, frames):
            got = streamed(model, x, chunk)
            assert got.shape == expected.shape, chunk
            torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_streamed_steps_under_bf16_autocast_follow_the_offline_pass():
    """The look-ahead convolutions' own oneDNN path (weights packed in the autocast dtype)
    agrees with the offline pass under the same autocast, to bf16 rounding."""
    model = tiny_mict(4, 7)
    x = torch.randn(1, 3, 24, 16, 16)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        expected = step_logits(model, x).float()
        got = streamed(model, x, 4).float()
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=0.05, atol=0.05 * expected.abs().max().item())
    assert got.std(dim=1).min() > 0


def test_bottleneck_resnet18_and_single_stream():
    for model in (tiny_mict(16, 7, "bottleneck"),
                  build_model("mict_resnet18", num_classes=4, temporal_stride=4).eval()):
        x = torch.randn(3, 19, 32, 32)
        with torch.inference_mode():
            expected = step_logits(model, x[None])[0]
            stream = StreamingModel(model)
            got = torch.cat([*[stream.push(x[:, i:i + 5]) for i in range(0, 19, 5)],
                             stream.flush()[0]])
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
        assert got.std(dim=0).min() > 0  # the steps differ: the comparison is not vacuous


def test_steps_come_with_a_fixed_lookahead_and_each_frame_once():
    model = tiny_mict(4, 7)
    stream = StreamingModel(model)
    emitted_at = []
    with torch.inference_mode():
        for t in range(60):
            emitted_at += [t + 1] * stream.push(torch.randn(1, 3, 1, 32, 32)).shape[1]
    lags = [at - (i + 1) * stream.period for i, at in enumerate(emitted_at)]
    assert len(set(lags)) == 1 and 0 < lags[0] <= 32  # a fixed look-ahead of frames
    assert stream.frames == 60 and stream.steps == len(emitted_at)


def test_memory_stays_bounded_over_10000_frames():
    model = tiny_mict(16, 7)
    stream = StreamingModel(model)
    held, steps = [], 0
    with torch.inference_mode():
        for _ in range(10_000 // 50):
            steps += stream.push(torch.randn(1, 3, 50, 8, 8)).shape[1]
            held.append(stream.buffered())
        steps += stream.flush().shape[1]
    assert steps == -(-10_000 // 16)
    assert max(held[len(held) // 2:]) <= max(held[:10])  # no growth after the first chunks
    assert max(held) < 50 * 8 * 8 * 64 * 4


def test_refuses_other_families_and_training_mode():
    with pytest.raises(TypeError, match="no incremental pass"):
        StreamingModel(build_model("resnet3d_18", num_classes=3).eval())
    with pytest.raises(ValueError, match="eval mode"):
        StreamingModel(tiny_mict().train())


@pytest.mark.parametrize("precompute", [True, False])
def test_deferred_pushes_equal_the_offline_pass(precompute):
    """Pushed with ``defer`` (the 2D first blocks of the newest frames left for later), frame by
    frame, with or without :meth:`precompute` between frames: the same per-step logits."""
    model = tiny_mict(4, 7)
    x = torch.randn(1, 3, 37, 16, 16)
    with torch.inference_mode():
        expected = step_logits(model, x)
        stream = StreamingModel(model)
        outs = []
        for t in range(x.shape[2]):
            outs.append(stream.push(x[:, :, t:t + 1], defer=True))
            if precompute:
                stream.precompute()
        got = torch.cat([*outs, stream.flush()], dim=1)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_a_deferred_push_that_completes_a_step_runs_only_what_the_step_needs():
    """The push that completes a step runs no stage's first 2D block on its newest input (that
    frame's look-ahead branch has not seen the frames after it); precompute runs them."""
    model = tiny_mict(4, 7)
    stream = StreamingModel(model)
    ran: list[str] = []
    for i in range(1, 5):
        getattr(stream.model, f"layer{i}").get_submodule("0").register_forward_hook(
            lambda m, args, out, i=i: ran.append(f"layer{i}"))
    completing, later = [], []
    with torch.inference_mode():
        for _ in range(40):
            ran.clear()
            steps = stream.push(torch.randn(1, 3, 1, 16, 16), defer=True).shape[1]
            pushed = list(ran)
            ran.clear()
            stream.precompute()
            if steps:
                completing.append(pushed)
                later.append(list(ran))
    assert completing and all(not runs for runs in completing), completing
    assert all(set(runs) == {f"layer{i}" for i in range(1, 5)} for runs in later), later

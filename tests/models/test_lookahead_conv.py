"""LookaheadConv3d equals a Conv3d on the clip zero-padded after its end, in every code path."""

import pytest
import torch
import torch.nn.functional as F

from mictnet.models import CausalConv3d, LookaheadConv3d


def padded_reference(conv: LookaheadConv3d, x: torch.Tensor) -> torch.Tensor:
    k = conv.kernel_size[0]
    return F.conv3d(F.pad(x.float(), (0, 0, 0, 0, 0, k - 1)), conv.weight.float(),
                    None if conv.bias is None else conv.bias.float(), conv.stride, conv.padding)


@pytest.mark.parametrize(
    ("depth", "kernel", "stride"),
    [(16, (7, 7, 7), (1, 2, 2)), (16, (3, 7, 7), (1, 2, 2)), (5, (7, 7, 7), (1, 2, 2)),
     (8, (3, 3, 3), (1, 1, 1)), (8, (3, 3, 3), (2, 2, 2)), (7, (3, 3, 3), (2, 1, 1)),
     (1, (3, 3, 3), (1, 1, 1)), (9, (5, 3, 3), (3, 1, 1))],
)
def test_lookahead_conv_equals_padded_conv(depth, kernel, stride):
    torch.manual_seed(0)
    conv = LookaheadConv3d(3, 4, kernel, stride, bias=True)
    x = torch.randn(2, 3, depth, 13, 12)
    out = conv(x)
    torch.testing.assert_close(out, padded_reference(conv, x), rtol=1e-5, atol=1e-5)
    assert out.shape[2] == -(-depth // stride[0])


@pytest.mark.parametrize(
    ("kernel", "width", "channels_seen"),
    [((7, 7, 7), 160, 6), ((7, 7, 7), 37, 6), ((5, 3, 5), 21, 6), ((5, 3, 4), 20, 3)],
)
def test_bf16_column_pairs_equal_the_padded_conv(kernel, width, channels_seen, monkeypatch):
    torch.manual_seed(0)
    conv = LookaheadConv3d(3, 8, kernel, (1, 2, 2)).to(torch.bfloat16)
    x = torch.randn(1, 3, 9, 20, width).to(torch.bfloat16)
    seen = input_channels_seen(monkeypatch)
    out = conv(x.contiguous(memory_format=torch.channels_last_3d))
    assert set(seen) == {channels_seen}  # even kernel widths keep the plain convolution
    ref = padded_reference(conv, x)
    assert out.dtype == torch.bfloat16 and out.shape == ref.shape
    assert (out.float() - ref).abs().max() <= 2e-2 * ref.abs().max()


def test_gradients_equal_the_padded_conv():
    torch.manual_seed(0)
    conv = LookaheadConv3d(3, 4, (7, 3, 3), (1, 2, 2))
    x = torch.randn(1, 3, 10, 8, 8, requires_grad=True)
    conv(x).square().sum().backward()
    grad_w, grad_x = conv.weight.grad.clone(), x.grad.clone()
    conv.weight.grad, x.grad = None, None
    padded_reference(conv, x).square().sum().backward()
    torch.testing.assert_close(conv.weight.grad, grad_w, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(x.grad, grad_x, rtol=1e-4, atol=1e-4)


def test_traced_graph_pads_and_runs_any_length():
    torch.manual_seed(0)
    conv = LookaheadConv3d(3, 4, (5, 3, 3), (1, 1, 1)).eval()
    traced = torch.jit.trace(conv, torch.randn(1, 3, 8, 6, 6))
    x = torch.randn(1, 3, 2, 6, 6)
    torch.testing.assert_close(traced(x), padded_reference(conv, x), rtol=1e-5, atol=1e-5)


def input_channels_seen(monkeypatch) -> list[int]:
    """Records the input channels of every F.conv3d call."""
    seen, conv3d = [], F.conv3d

    def recording(x, weight, *args):
        seen.append(weight.shape[1])
        return conv3d(x, weight, *args)

    monkeypatch.setattr(F, "conv3d", recording)
    return seen


def test_bf16_autocast_takes_the_column_pairs_too(monkeypatch):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    torch.manual_seed(0)
    conv = LookaheadConv3d(3, 8, (5, 7, 7), (1, 2, 2))
    x = torch.randn(1, 3, 6, 16, 16)
    seen = input_channels_seen(monkeypatch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = conv(x)
    assert seen and set(seen) == {6}
    seen.clear()
    conv(x)
    assert seen and set(seen) == {3}
    ref = padded_reference(conv, x)
    assert out.dtype == torch.bfloat16
    assert (out.float() - ref).abs().max() <= 2e-2 * ref.abs().max()


@pytest.mark.parametrize(("capability", "channels_seen"), [("AVX2", 6), ("AVX512", 3)])
def test_fp32_takes_the_column_pairs_on_avx2_only(capability, channels_seen, monkeypatch):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    torch.manual_seed(0)
    conv = LookaheadConv3d(3, 8, (7, 7, 7), (1, 2, 2))
    x = torch.randn(2, 3, 9, 20, 37).contiguous(memory_format=torch.channels_last_3d)
    seen = input_channels_seen(monkeypatch)
    out = conv(x)
    assert seen and set(seen) == {channels_seen}
    torch.testing.assert_close(out, padded_reference(conv, x), rtol=1e-4, atol=1e-4)


def test_former_name_is_an_alias():
    assert CausalConv3d is LookaheadConv3d

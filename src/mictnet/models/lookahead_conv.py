"""Look-ahead 3D convolution: each output frame sees its own frame and the next ``k-1``.

(It is anti-causal in time; ``CausalConv3d``, its former name, stays as an alias.)

Zero padding after the clip's end would make the last ``k-1`` output frames multiply zeros (19%
of the entrance 7×7×7 convolution of a 16-frame clip). In eager execution those products are
skipped instead: the frames whose window lies inside the clip come from one convolution, and each
later frame from a convolution whose kernel is cut to the frames that remain. Kernels of depth 3
pad instead (two frames of zeros cost less than the extra calls), and so do exported graphs
(ONNX, TorchScript), whose shapes must not depend on Python branches.

In bf16 on the CPU, and in fp32 on AVX2 CPUs, a stride-2 convolution of a 3-channel clip runs
over 6 channels of column pairs at stride 1: the same sums, with less of the kernels' channel
padding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def exporting() -> bool:
    """Whether the model is being exported (ONNX) or traced/scripted: shapes must not steer
    Python branches then."""
    return (torch.onnx.is_in_onnx_export() or torch.compiler.is_exporting()
            or torch.jit.is_tracing() or torch.jit.is_scripting())


def _pairs_columns(conv: nn.Conv3d, x: Tensor) -> bool:
    """A stride-2 convolution of an odd number of channels with an odd kernel width is cheaper
    as a stride-1 convolution over pairs of columns where the CPU kernels would pad the
    channels: bf16 kernels multiply channel pairs, and AVX2 fp32 kernels (8 lanes) handle 6
    channels better than 3. AVX-512 fp32 kernels are faster without (benchmarks/
    bench_entrance.py: 1.08x with pairs at batch 8 on AVX2, 0.92x on AVX-512)."""
    if (x.device.type != "cpu" or conv.stride[2] != 2 or conv.in_channels % 2 == 0
            or conv.kernel_size[2] % 2 == 0):
        return False
    dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
    if dtype == torch.bfloat16:
        return True
    return dtype == torch.float32 and torch.backends.cpu.get_cpu_capability() == "AVX2"


class LookaheadConv3d(nn.Conv3d):
    """``nn.Conv3d`` padded only after the clip's end in time (symmetric in space): output frame
    ``t`` sees input frames ``t .. t+k-1``.

    Same parameters as a ``Conv3d`` with ``padding=(0, ph, pw)``, so state dicts are unchanged.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, int, int],
        stride: tuple[int, int, int],
        bias: bool = False,
    ) -> None:
        padding = (0, kernel_size[1] // 2, kernel_size[2] // 2)
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias=bias)

    def _conv_forward(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        if k <= 3 or exporting():
            return super()._conv_forward(F.pad(x, (0, 0, 0, 0, 0, k - 1)), weight, bias)
        if _pairs_columns(self, x):
            x, weight, stride, padding = self._column_pairs(x, weight)
        else:
            stride, padding = self.stride, self.padding
        depth = x.shape[2]
        inside = max(0, (depth - k) // s + 1)  # output frames whose window lies inside the clip
        pieces = [F.conv3d(x, weight, bias, stride, padding)] if inside else []
        for t in range(inside * s, depth, s):  # one frame each, kernel cut to the frames left
            pieces.append(F.conv3d(x[:, :, t:], weight[:, :, : depth - t], bias, stride,
                                   padding))
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=2)

    def _column_pairs(
        self, x: Tensor, weight: Tensor
    ) -> tuple[Tensor, Tensor, tuple[int, int, int], tuple[int, int, int]]:
        """The same convolution over ``2C`` channels of column pairs at stride 1 in width.

        Output column ``j`` reads input columns ``2j-p .. 2j-p+kw-1``; with one zero tap in front
        of the (odd-width) kernel those are the pairs ``j .. j+(kw+1)/2-1`` of the input padded
        by ``p+1`` on the left. In channels-last memory the pairs are a view.
        """
        n, c, d, h, w = x.shape
        kw, pw = self.kernel_size[2], self.padding[2]
        taps = (kw + 1) // 2
        out_w = (w + 2 * pw - kw) // 2 + 1
        right = 2 * (out_w + taps - 1) - w - (pw + 1)
        x = F.pad(x, (pw + 1, right)).contiguous(memory_format=torch.channels_last_3d)
        pairs = x.permute(0, 2, 3, 4, 1).reshape(n, d, h, x.shape[4] // 2, 2 * c)
        weight = F.pad(weight, (1, 0))
        o, _, k, kh, _ = weight.shape
        weight = weight.reshape(o, c, k, kh, taps, 2).permute(0, 5, 1, 2, 3, 4)
        weight = weight.reshape(o, 2 * c, k, kh, taps)
        return (pairs.permute(0, 4, 1, 2, 3),
                weight.contiguous(memory_format=torch.channels_last_3d),
                (self.stride[0], self.stride[1], 1), (0, self.padding[1], 0))


#: The former name (README, benchmarks and user code use it): the convolution looks forward.
CausalConv3d = LookaheadConv3d

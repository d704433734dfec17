"""Incremental inference of MiCT-ResNets: a stream is computed once per frame.

The 2D layers see one frame at a time and the 3D convolutions see the current frame and the
next ``k-1``, so each temporal operator keeps only the few frames it still needs: a look-ahead
convolution its last ``k-1`` inputs, the entrance's 3D max-pool one frame back. The operators
below are composed following :class:`~mictnet.models.mict.MiCTResNet`'s structure;
:meth:`StreamingModel.flush` reproduces the zero (or ``-inf``) padding after the clip's end, so
the per-step logits equal the offline pass (``features`` then the classifier at every time
step, before the time average) up to float rounding. Tensors are ``N×C×n×H×W`` chunks of ``n``
frames; ``None`` is a chunk of no frames.

A frame's 2D first block of each stage is not needed until the look-ahead branch beside it has
seen ``k-1`` more frames, so ``push(..., defer=True)`` leaves it for
:meth:`StreamingModel.precompute` (between frames, when the CPU is free): the push that
completes a step then computes only what that step needs.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import to_4d, to_5d
from .fusion import fuse_conv_bn
from .mict import LookaheadConv3dBranch, MiCTResNet, MiCTStage
from .skeleton import VideoClassifier, conv_bn_pool

Chunk = Tensor | None


def _cat(*chunks: Chunk) -> Chunk:
    given = [c for c in chunks if c is not None and c.shape[2]]
    return None if not given else given[0] if len(given) == 1 else torch.cat(given, dim=2)


def _conv3d(conv: nn.Conv3d, x: Tensor, packed: dict) -> Tensor:
    """``conv`` over ``x`` with its own padding. On the CPU through oneDNN whatever the shape,
    its weights reordered once per input shape and dtype (kept in ``packed``): ATen's heuristic
    sends a single short chunk (N·C·T·H <= 20480, as a stream pushes them) to its unvectorised
    ``slow_conv3d``, and oneDNN reorders the weights on every call. Elsewhere (another device,
    dtype or padding, or a dtype oneDNN cannot pack on this CPU): the module's own path."""
    dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
    key = (dtype, tuple(x.shape))
    if key not in packed:
        if len(packed) >= 8:  # chunk sizes vary only at a stream's start and end
            packed.clear()
        packed[key] = _pack(conv, x, dtype)
    if packed[key] is None:
        return nn.Conv3d._conv_forward(conv, x, conv.weight, conv.bias)
    weight, bias = packed[key]
    return torch.ops.mkldnn._convolution_pointwise(x.to(dtype).contiguous(), weight, bias,
                                                   *_conv_args(conv), "none", [], "")


def _conv_args(conv: nn.Conv3d) -> tuple:
    return list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups


def _pack(conv: nn.Conv3d, x: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor | None] | None:
    """oneDNN's reordered weights (and the bias) of ``conv`` for inputs like ``x`` in ``dtype``;
    ``None`` where oneDNN does not take them."""
    if (x.device.type != "cpu" or x.requires_grad or conv.padding_mode != "zeros"
            or not (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled)
            or dtype not in (torch.float32, torch.bfloat16)
            or conv.weight.dtype not in (torch.float32, torch.bfloat16)):
        return None
    try:
        weight = torch.ops.mkldnn._reorder_convolution_weight(
            conv.weight.to(dtype), *_conv_args(conv), list(x.shape))
    except RuntimeError:  # oneDNN lacks this dtype on this CPU (bf16 below AVX-512)
        return None
    return weight, None if conv.bias is None else conv.bias.to(dtype)


def _frames(chunk: Chunk) -> int:
    return 0 if chunk is None else chunk.shape[2]


class StreamOp:
    """A temporal operator on a stream: ``push`` a chunk, get the output frames it completes;
    ``flush`` at the stream's end gives the rest."""

    def push(self, x: Chunk) -> Chunk:
        raise NotImplementedError

    def flush(self) -> Chunk:
        return None

    def precompute(self) -> None:
        """Compute now the work held back for later outputs (none by default)."""

    def buffered(self) -> int:
        """Elements held for later frames (bounded: what keeps memory flat)."""
        return 0


class PerFrame(StreamOp):
    """A 2D module on every ``stride``-th frame of the stream (``to_4d(x, stride)``)."""

    def __init__(self, fn: nn.Module, stride: int = 1) -> None:
        self.fn, self.stride, self.seen = fn, stride, 0

    def push(self, x: Chunk) -> Chunk:
        if x is None:
            return None
        first = (-self.seen) % self.stride
        self.seen += x.shape[2]
        x = x[:, :, first::self.stride]
        if not x.shape[2]:
            return None
        frames, depth = to_4d(x)
        return to_5d(self.fn(frames), depth)

    def inputs_for(self, outputs: int) -> int:
        """Input frames, from the next one, that give the next ``outputs`` output frames."""
        return 0 if outputs <= 0 else (-self.seen) % self.stride + (outputs - 1) * self.stride + 1


class Pointwise(StreamOp):
    """A module that treats frames independently, on the 5D chunk (batch norm, ReLU)."""

    def __init__(self, fn: nn.Module) -> None:
        self.fn = fn

    def push(self, x: Chunk) -> Chunk:
        return None if x is None else self.fn(x)


class LookaheadConv(StreamOp):
    """A :class:`~.lookahead_conv.LookaheadConv3d`: output ``i`` is emitted once inputs
    ``s·i .. s·i+k-1`` have arrived; at the end the module itself pads the last frames."""

    def __init__(self, conv: nn.Conv3d) -> None:
        self.conv, self.buffer = conv, None
        self.k, self.s = conv.kernel_size[0], conv.stride[0]
        self.packed: dict = {}  # oneDNN's weights per input shape and dtype

    def push(self, x: Chunk) -> Chunk:
        self.buffer = _cat(self.buffer, x)
        ready = max(0, (_frames(self.buffer) - self.k) // self.s + 1)
        if not ready:
            return None
        used = self.buffer[:, :, :(ready - 1) * self.s + self.k]
        out = _conv3d(self.conv, used, self.packed)
        self.buffer = self.buffer[:, :, ready * self.s:]
        return out

    def flush(self) -> Chunk:
        rest, self.buffer = self.buffer, None
        return None if rest is None else self.conv(rest)

    def buffered(self) -> int:
        return 0 if self.buffer is None else self.buffer.numel()


class TemporalPool(StreamOp):
    """A 3D max-pool: output ``j`` pools inputs ``s·j-p .. s·j-p+k-1`` (``-inf`` outside)."""

    def __init__(self, pool: nn.MaxPool3d) -> None:
        def triple(v: int | tuple[int, ...]) -> tuple[int, ...]:
            return (v,) * 3 if isinstance(v, int) else tuple(v)

        (self.k, *k2), (self.s, *s2), (self.p, *p2) = map(
            triple, (pool.kernel_size, pool.stride, pool.padding))
        self.spatial = dict(kernel_size=(self.k, *k2), stride=(self.s, *s2), padding=(0, *p2))
        self.buffer, self.seen, self.emitted = None, 0, 0

    def push(self, x: Chunk) -> Chunk:
        if x is not None and self.seen == 0 and self.p:  # the padding before the start
            x = F.pad(x, (0, 0, 0, 0, self.p, 0), value=-torch.inf)
            self.seen -= self.p
        self.seen += _frames(x)
        self.buffer = _cat(self.buffer, x)
        return self._emit()

    def flush(self) -> Chunk:
        if self.buffer is None:
            return None
        depth = self.seen  # real input frames
        total = (depth + 2 * self.p - self.k) // self.s + 1
        need = (total - self.emitted - 1) * self.s + self.k - _frames(self.buffer)
        if need > 0:
            self.buffer = F.pad(self.buffer, (0, 0, 0, 0, 0, need), value=-torch.inf)
        out = self._emit()
        self.buffer = None
        return out

    def _emit(self) -> Chunk:
        ready = max(0, (_frames(self.buffer) - self.k) // self.s + 1)
        if not ready:
            return None
        out = F.max_pool3d(self.buffer[:, :, :(ready - 1) * self.s + self.k], **self.spatial)
        self.buffer = self.buffer[:, :, ready * self.s:]
        self.emitted += ready
        return out

    def buffered(self) -> int:
        return 0 if self.buffer is None else self.buffer.numel()


class Chain(StreamOp):
    """Operators one after the other."""

    def __init__(self, *ops: StreamOp) -> None:
        self.ops = ops

    def push(self, x: Chunk) -> Chunk:
        for op in self.ops:
            x = op.push(x)
        return x

    def flush(self) -> Chunk:
        carry = None
        for op in self.ops:
            carry = _cat(op.push(carry), op.flush())
        return carry

    def precompute(self) -> None:
        for op in self.ops:
            op.precompute()

    def buffered(self) -> int:
        return sum(op.buffered() for op in self.ops)


class Sum(StreamOp):
    """A per-frame 2D branch and a look-ahead branch over the same input, summed frame by frame
    as both have them (MiCT's cross-domain residual). The 2D branch runs on a frame only when
    the sum needs it, or at :meth:`precompute`: until the look-ahead branch has seen the frames
    after it, its output would wait anyway."""

    def __init__(self, a: PerFrame, b: StreamOp) -> None:
        self.a, self.b = a, b
        self.pending: list[Chunk] = [None, None]  # outputs not summed yet
        self.queued: Chunk = None  # input frames the 2D branch has not run on

    def push(self, x: Chunk) -> Chunk:
        self.queued = _cat(self.queued, x)
        b = self.b.push(x)
        missing = _frames(self.pending[1]) + _frames(b) - _frames(self.pending[0])
        return self._emit(self._run_2d(missing), b)  # only the 2D frames these sums need

    def precompute(self) -> None:
        self.b.precompute()
        self.pending[0] = _cat(self.pending[0], self._run_2d(None))

    def flush(self) -> Chunk:
        out = self._emit(self._run_2d(None), self.b.flush())  # a per-frame branch holds none
        if any(p is not None for p in self.pending):
            raise RuntimeError("streaming branches ended with different lengths")
        return out

    def _run_2d(self, outputs: int | None) -> Chunk:
        """The 2D branch on the queued frames that give its next ``outputs`` frames (all of
        them for ``None``)."""
        if self.queued is None or outputs is not None and outputs <= 0:
            return None
        n = _frames(self.queued) if outputs is None else min(self.a.inputs_for(outputs),
                                                             _frames(self.queued))
        x, self.queued = self.queued[:, :, :n], (self.queued[:, :, n:]
                                                 if _frames(self.queued) > n else None)
        return self.a.push(x)

    def _emit(self, a: Chunk, b: Chunk) -> Chunk:
        a, b = _cat(self.pending[0], a), _cat(self.pending[1], b)
        ready = min(_frames(a), _frames(b))
        if not ready:
            self.pending = [a, b]
            return None
        self.pending = [a[:, :, ready:] if _frames(a) > ready else None,
                        b[:, :, ready:] if _frames(b) > ready else None]
        return a[:, :, :ready] + b[:, :, :ready]

    def buffered(self) -> int:
        return (self.a.buffered() + self.b.buffered()
                + sum(c.numel() for c in (*self.pending, self.queued) if c is not None))


def _branch(branch: LookaheadConv3dBranch) -> StreamOp:
    """Look-ahead conv, batch norm, optional 3D max-pool, ReLU."""
    ops: list[StreamOp] = [LookaheadConv(branch.conv), Pointwise(branch.bn)]
    if isinstance(branch.pool, nn.MaxPool3d):
        ops.append(TemporalPool(branch.pool))
    elif not isinstance(branch.pool, nn.Identity):
        raise TypeError(f"cannot stream a {type(branch.pool).__name__} pool")
    return Chain(*ops, Pointwise(branch.relu))


class _Stem2d(nn.Module):
    def __init__(self, model: MiCTResNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        m = self.model
        return m.relu(conv_bn_pool(m.conv1, m.bn1, m.maxpool, x))


def _stage(stage: MiCTStage) -> StreamOp:
    rest = nn.Sequential(*[getattr(stage, str(i)) for i in range(1, stage.num_blocks)])
    cross = Sum(PerFrame(getattr(stage, "0"), stage.temporal_stride), _branch(stage.mict3d))
    return Chain(cross, PerFrame(rest)) if len(rest) else cross


def mict_stream(model: MiCTResNet) -> StreamOp:
    """The streaming form of ``model.features``."""
    stem = Sum(PerFrame(_Stem2d(model), 2), _branch(model.mict3d))
    return Chain(stem, *[_stage(getattr(model, f"layer{i}")) for i in range(1, 5)])


def temporal_period(model: MiCTResNet) -> int:
    """Input frames per output step: the entrance's 2 times the stages' temporal strides."""
    period = 2
    for s in model.config.stage_temporal_strides:
        period *= s
    return period


class StreamingModel:
    """A MiCT-ResNet (eval mode) fed frame by frame or in chunks of ``N×3×n×H×W`` (``3×n×H×W``:
    one stream); ``push`` and ``flush`` return per-step logits ``N×steps×K`` (``steps`` may be
    0): step ``i`` is the classifier on time step ``i`` of ``features``, which covers input
    frames ``period·i .. period·(i+1)-1``. It runs a copy of the model with the batch norms
    folded into their convolutions (:func:`~.fusion.fuse_conv_bn`: a memory pass less per batch
    norm on every small chunk), so later changes to ``model``'s weights are not seen."""

    def __init__(self, model: nn.Module) -> None:
        if not isinstance(model, MiCTResNet):
            raise TypeError(f"{type(model).__name__} has no incremental pass (only MiCT-ResNets)")
        if model.training:
            raise ValueError("streaming needs the model in eval mode (model.eval())")
        self.model = fuse_conv_bn(copy.deepcopy(model))
        self.period = temporal_period(model)
        self.reset()

    def reset(self) -> None:
        """Start a new stream."""
        self.features = mict_stream(self.model)
        self.frames = self.steps = self.batch = 0

    def push(self, frames: Tensor, defer: bool = False) -> Tensor:
        """The steps ``frames`` complete. With ``defer``, only the work those steps need: the
        2D first blocks of the newest frames wait for :meth:`precompute` (or a later push)."""
        single = frames.dim() == 4
        x = frames.unsqueeze(0) if single else frames
        if x.dim() != 5:
            raise ValueError(f"expected N×3×n×H×W frames, got {tuple(frames.shape)}")
        self.frames += x.shape[2]
        self.batch = x.shape[0]
        out = self._logits(self.features.push(x.contiguous(memory_format=torch.channels_last_3d)))
        if not defer:
            self.features.precompute()
        return out[0] if single else out

    def precompute(self) -> None:
        """Run the work a deferred push left for later steps (call it while waiting for the
        next frame)."""
        self.features.precompute()

    def flush(self) -> Tensor:
        """The steps the end of the stream completes (``N×steps×K``); the stream then starts
        anew."""
        out = self._logits(self.features.flush())
        self.reset()
        return out

    def buffered(self) -> int:
        """Elements held in the operators' buffers."""
        return self.features.buffered()

    def _logits(self, maps: Chunk) -> Tensor:
        if maps is None:
            return torch.empty(self.batch, 0, self.model.fc.out_features)
        self.steps += maps.shape[2]
        return self.model.fc(self.model.dropout(maps.mean(dim=(3, 4))).transpose(1, 2))


def step_logits(model: VideoClassifier, x: Tensor) -> Tensor:
    """The offline per-step logits ``N×T'×K``: ``features`` then the classifier at every time
    step, before the head's time average."""
    return model.fc(model.dropout(model.features(x).mean(dim=(3, 4))).transpose(1, 2))



class WindowStream:
    """The fallback for models without an incremental pass: the last ``window`` frames re-run
    every ``step`` frames (one step each), with :class:`StreamingModel`'s ``push``/``flush``."""

    def __init__(self, model: nn.Module, window: int, step: int) -> None:
        if window < 1 or step < 1:
            raise ValueError(f"need window >= 1 and step >= 1, got {window}, {step}")
        self.model, self.window, self.period = model, window, step
        self.reset()

    def reset(self) -> None:
        self.buffer: Chunk = None
        self.frames = self.steps = self.since = 0

    def push(self, frames: Tensor, defer: bool = False) -> Tensor:
        """The steps ``frames`` complete (``defer``: nothing to defer here)."""
        single = frames.dim() == 4
        x = frames.unsqueeze(0) if single else frames
        outs = []
        for t in range(x.shape[2]):
            self.buffer = _cat(self.buffer, x[:, :, t:t + 1])[:, :, -self.window:]
            self.frames += 1
            self.since += 1
            if _frames(self.buffer) == self.window and self.since >= self.period:
                outs.append(self._run())
        out = torch.stack(outs, 1) if outs else torch.empty(x.shape[0], 0,
                                                            self.model.fc.out_features)
        return out[0] if single else out

    def precompute(self) -> None:
        """Nothing is deferred in a window."""

    def flush(self) -> Tensor:
        """A last step over the frames held when no full window ever came."""
        out = self._run()[:, None] if self.buffer is not None and not self.steps else None
        batch = 1 if self.buffer is None else self.buffer.shape[0]
        self.reset()
        return out if out is not None else torch.empty(batch, 0, self.model.fc.out_features)

    def buffered(self) -> int:
        return 0 if self.buffer is None else self.buffer.numel()

    def _run(self) -> Tensor:
        self.since, self.steps = 0, self.steps + 1
        return self.model(self.buffer)


def stream_model(model: nn.Module, window: int, step: int) -> StreamingModel | WindowStream:
    """The incremental pass of a MiCT-ResNet, else a window of ``window`` frames re-run every
    ``step`` frames."""
    return StreamingModel(model) if isinstance(model, MiCTResNet) else WindowStream(model, window,
                                                                                 step)

"""``mictnet.load(CKPT).predict(VIDEO)``: actions in any video file (``mict predict`` on the
command line).

Any file OpenCV's FFmpeg reads works (AVI, MP4, MKV, WebM...; any size, frame rate, length;
colour or grayscale). Frames are resized and centre-cropped as at test time (the checkpoint's
resize and crop size); frames larger than the resize are resized as they are decoded, so memory
follows the model's input, not the file's frame size. The last frames the header claims are
decoded first, so a truncated file is known before any clip is chosen: the answer then uses the
frames that decode, and ``Prediction.warning`` says why a file is suspect (truncated, a single
frame, shorter than a clip).

The main answer averages the class probabilities of up to ``clips`` (default 5) clips of the
training clip length ``T`` (e.g. 16 frames), evenly spaced over the video: a short video gets
one clip per ``T`` frames (a video shorter than ``T`` is looped, as in training), a long one five
clips spread over its whole length. This is the multi-clip protocol of ``mict evaluate``; it
looks at the whole video at a fixed cost, whatever its length.

The timeline slides a window of ``T`` frames (default) over the video, one step per second
(``step_seconds``), the window centred on the middle of its step, and gives the top action of
each step. Frames are decoded once, forward, with only one window in memory;
``predict_with_timeline`` gives both answers from that one pass (``mict predict --timeline``).

Each method takes a ``deadline`` (a :func:`time.monotonic` time): past it, the next decoded frame,
clip batch or timeline step raises :class:`BudgetExceeded` (``mict serve --timeout``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .data.clip_spec import ClipSpec
from .data.decode import VideoInfo, VideoReader
from .data.sampling import MAX_CLIPS, ClipSampler, looped_indices
from .data.transforms import ClipTransform
from .engine.checkpoint import CheckpointMeta, load_model
from .engine.distributed import resolve_device
from .engine.precision import autocast, resolve_precision
from .models.mict import MiCTResNet
from .models.streaming import StreamingModel, stream_model

log = logging.getLogger(__name__)

DEFAULT_CLIPS = 5
CLIP_BATCH = 8  # clips per forward pass
FALLBACK_FPS = 25.0  # for files whose header has no frame rate


@dataclass(frozen=True)
class Prediction:
    """Top-k actions of one video, best first."""

    video: str
    labels: list[str]
    probabilities: list[float]
    frames: int  # frames in the video
    fps: float
    width: int
    height: int
    clips: int  # clips averaged
    clip_frames: int  # frames per clip
    header_frames: int | None = None  # frames the file's header claims (None: no count)
    truncated: bool = False  # fewer frames decode than the header claims
    warning: str | None = None  # why the answer is suspect (truncated, a still image, short)

    @property
    def label(self) -> str:
        return self.labels[0]

    @property
    def probability(self) -> float:
        return self.probabilities[0]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TimelineStep:
    """The top action of one step (``start``..``end`` seconds) of a video."""

    start: float
    end: float
    label: str
    probability: float
    first_frame: int  # the window the model saw: first_frame .. first_frame + frames - 1
    frames: int


class BudgetExceeded(TimeoutError):
    """The work went past its deadline (stopped between frames, clip batches or steps)."""


def budget_check(deadline: float | None) -> Callable[[], None]:
    """A function that raises :class:`BudgetExceeded` once ``time.monotonic()`` is past
    ``deadline`` (``None``: never)."""

    def check() -> None:
        if deadline is not None and time.monotonic() > deadline:
            raise BudgetExceeded("over its time budget")

    return check


@dataclass(frozen=True)
class StreamStep:
    """One output step of :meth:`Predictor.stream`: the model's logits for source frames
    ``first_frame .. last_frame``, known once frame ``emitted_after`` (exclusive) arrived."""

    index: int
    first_frame: int
    last_frame: int
    emitted_after: int
    logits: torch.Tensor  # K, float32

    @property
    def probabilities(self) -> torch.Tensor:
        return self.logits.softmax(dim=0)


class Predictor:
    """A trained model with its classes and test-time transform, ready for video files."""

    def __init__(self, model: nn.Module, meta: CheckpointMeta, device: str | torch.device = "cpu",
                 clips: int = DEFAULT_CLIPS, amp: str = "none") -> None:
        if not 1 <= clips <= MAX_CLIPS:
            raise ValueError(f"clips must be 1-{MAX_CLIPS}, got {clips}")
        self.device = resolve_device(str(device))
        self.model = model.to(self.device).eval()
        self.precision = resolve_precision(amp, self.device)  # as mict evaluate's --amp
        self.classes = list(meta.classes)
        self.clip: ClipSpec = meta.clip  # the clip the model was trained on
        self.clips = clips
        self.transform: ClipTransform = self.clip.eval_transform()

    @property
    def clip_frames(self) -> int:
        """Frames per clip, the training length."""
        return self.clip.frames

    # ------------------------------------------------------------ main answer

    def predict(self, video: str | Path, top: int = 5,
                deadline: float | None = None) -> Prediction:
        """The ``top`` most likely actions of ``video`` (see the module docstring)."""
        _check_top(top)
        check = budget_check(deadline)
        with self._reader(video, check) as reader:
            reader.check_end()
            clips = reader.read_clips(
                lambda frames: clip_indices(frames, self.clip_frames, self.clips, self.clip.stride))
            return self._prediction(str(video), reader.info, clips, top, check)

    def predict_with_timeline(self, video: str | Path, top: int = 5, window: int | None = None,
                              step_seconds: float = 1.0, progress: bool = False,
                              deadline: float | None = None, method: str = "auto"
                              ) -> tuple[Prediction, list[TimelineStep]]:
        """:meth:`predict` and :meth:`timeline` of ``video`` from one forward decode: the
        timeline's pass also keeps the frames of the main answer's clips."""
        _check_top(top)
        length = _window_length(window or self.clip_frames, step_seconds)
        check = budget_check(deadline)
        with self._reader(video, check) as reader:
            info = reader.check_end()
            plan = clip_indices(info.frames, self.clip_frames, self.clips, self.clip.stride)
            windows = _FrameWindows(reader, keep={i for clip in plan for i in clip})
            steps = self._timeline_of(video, windows, info, length, step_seconds, progress, check,
                                      method)
            clips = windows.kept_clips(plan)
            return self._prediction(str(video), reader.info, clips, top, check), steps

    def top_classes(self, probabilities: torch.Tensor, k: int) -> tuple[list[str], list[float]]:
        """The ``k`` most probable classes (all of them where there are fewer) and their
        probabilities, most probable first."""
        values, indices = probabilities.topk(min(k, len(self.classes)))
        return [self.classes[i] for i in indices.tolist()], values.tolist()

    def _reader(self, video: str | Path, check: Callable[[], None]) -> VideoReader:
        """``video`` opened with frames larger than the model's resize shrunk as decoded."""
        return VideoReader(video, shrink_to=self.clip.resize, check=check)

    def _prediction(self, video: str, info: VideoInfo, clips: Sequence[np.ndarray],
                    top: int, check: Callable[[], None]) -> Prediction:
        labels, probabilities = self.top_classes(self._clips_probabilities(clips, check), top)
        return Prediction(video, labels, probabilities, info.frames, info.fps, info.width,
                          info.height, len(clips), self.clip_frames, info.header_frames,
                          info.truncated, info.warning(self.clip_frames))

    def _clips_probabilities(self, clips: Sequence[np.ndarray],
                             check: Callable[[], None]) -> torch.Tensor:
        """Mean class probabilities of ``clips``, :data:`CLIP_BATCH` per forward pass."""
        total = torch.zeros(len(self.classes))
        for first in range(0, len(clips), CLIP_BATCH):
            check()
            batch = [self.transform(torch.from_numpy(c)) for c in clips[first:first + CLIP_BATCH]]
            total += self._probabilities(torch.stack(batch)).sum(dim=0)
        return total / len(clips)

    def _probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), autocast(self.device, self.precision.dtype):
            logits = self.model(batch.to(self.device))
        return logits.float().softmax(dim=1).cpu()

    # ------------------------------------------------------------ explanation

    def explain(self, video: str | Path, target: str | int | None = None, layer: str = "auto",
                method: str = "gradcam", progress: bool = False):
        """Grad-CAM of ``video`` for ``target`` (a class name or index; default the top
        class): a :class:`mictnet.serve.explain.Explanation`, heat per frame over space and
        time."""
        from .serve.explain import explain

        return explain(self, video, None if target is None else [target], layer=layer,
                       method=method, progress=progress)[0]

    # ------------------------------------------------------------ timeline

    def timeline(self, video: str | Path, window: int | None = None, step_seconds: float = 1.0,
                 progress: bool = False, deadline: float | None = None, method: str = "auto"
                 ) -> list[TimelineStep]:
        """The top action of every ``step_seconds`` of ``video`` (see the module docstring).

        ``method``: ``"stream"`` (the default, ``"auto"``, for MiCT-ResNets): one incremental
        pass over the whole video (:meth:`stream`), each second the per-step probabilities of
        the steps it overlaps, weighted by the overlap; ``"windows"``: a window of ``window``
        frames per second."""
        length = _window_length(window or self.clip_frames, step_seconds)
        check = budget_check(deadline)
        with self._reader(video, check) as reader:
            info = reader.check_end()  # a truncated file's real end, before any window
            return self._timeline_of(video, _FrameWindows(reader), info, length, step_seconds,
                                     progress, check, method)

    def _timeline_of(self, video: str | Path, windows: _FrameWindows, info: VideoInfo,
                     length: int, step_seconds: float, progress: bool,
                     check: Callable[[], None], method: str = "auto") -> list[TimelineStep]:
        if method not in ("auto", "stream", "windows"):
            raise ValueError(f"timeline method must be auto, stream or windows, got {method!r}")
        fps = info.fps if info.fps > 0 else FALLBACK_FPS
        bar = tqdm(desc=Path(video).name, unit="step", disable=not progress, leave=False)
        try:
            if method == "stream" or (method == "auto" and isinstance(self.model, MiCTResNet)):
                return self._stream_timeline(windows, info.frames, fps, step_seconds, bar, check)
            return self._timeline(windows, info.frames, fps, length, step_seconds, bar, check)
        finally:
            bar.close()

    def _timeline(self, windows: _FrameWindows, frames: int, fps: float, length: int,
                  step_seconds: float, bar: tqdm, check: Callable[[], None]
                  ) -> list[TimelineStep]:
        steps = timeline_steps(frames, fps, step_seconds)
        bar.reset(total=steps)
        stride = self.clip.stride  # a window reads every stride-th frame
        span = length * stride
        out = []
        for i in range(steps):
            check()
            centre = (i + 0.5) * step_seconds * fps
            start = min(max(round(centre - span / 2), 0), max(frames - span, 0))
            indices = [start + k for k in looped_indices(0, length, -(-(frames - start) // stride),
                                                         stride)]
            clip = self.transform(torch.from_numpy(windows.read(indices)))
            p, c = self._probabilities(clip.unsqueeze(0))[0].max(dim=0)
            end = min((i + 1) * step_seconds, frames / fps)
            out.append(TimelineStep(round(i * step_seconds, 6), round(end, 6),
                                    self.classes[int(c)], float(p), start, len(indices)))
            bar.update()
        return out

    def _stream_timeline(self, windows: _FrameWindows, frames: int, fps: float,
                         step_seconds: float, bar: tqdm, check: Callable[[], None]
                         ) -> list[TimelineStep]:
        seconds = timeline_steps(frames, fps, step_seconds)
        bar.reset(total=frames)

        def decoded(chunk: int = 64) -> Iterator[np.ndarray]:
            for start in range(0, frames, chunk):
                check()
                part = windows.read(list(range(start, min(start + chunk, frames))))
                bar.update(len(part))
                yield from part

        steps = list(self.stream(decoded(), chunk=16))
        out = []
        for i in range(seconds):
            lo, hi = i * step_seconds * fps, min((i + 1) * step_seconds * fps, frames)
            weights = [max(0.0, min(hi, s.last_frame + 1) - max(lo, s.first_frame))
                       for s in steps]
            used = [(w, s) for w, s in zip(weights, steps, strict=True) if w > 0] or \
                [(1.0, steps[-1])]
            probs = sum(w * s.probabilities for w, s in used) / sum(w for w, _ in used)
            p, c = probs.max(dim=0)
            first, last = used[0][1].first_frame, used[-1][1].last_frame
            end = min((i + 1) * step_seconds, frames / fps)
            out.append(TimelineStep(round(i * step_seconds, 6), round(end, 6),
                                    self.classes[int(c)], float(p), first, last - first + 1))
        return out

    # ------------------------------------------------------------ streams

    def stream(self, frames: Iterable[np.ndarray], chunk: int = 4) -> Iterator[StreamStep]:
        """Per-step logits of a stream of uint8 ``H×W×3`` RGB frames (any size, the source's
        rate), each frame computed once (:class:`FrameStream`); the stream's end flushes the
        last steps."""
        stream = self.open_stream(chunk)
        for frame in frames:
            yield from stream.push(frame)
        yield from stream.close()

    def open_stream(self, chunk: int = 4, defer: bool = False) -> FrameStream:
        """A :class:`FrameStream`: frames pushed one by one as they arrive (a camera)."""
        return FrameStream(self, chunk, defer)

    def _frames_tensor(self, frames: list[np.ndarray]) -> torch.Tensor:
        return self.transform(torch.from_numpy(np.stack(frames))).unsqueeze(0).to(self.device)


class FrameStream:
    """The push side of :meth:`Predictor.stream`: every ``clip.stride``-th frame pushed is
    transformed and fed to the model's incremental pass in chunks of ``chunk`` (exactly the
    offline pass's per-step logits, :mod:`mictnet.models.streaming`); models without one re-run
    a window of ``clip.frames`` every quarter window (said in the log). :meth:`push` returns the
    steps a frame completes, :meth:`close` the last ones. With ``defer``, a push computes only
    what its steps need and :meth:`precompute` (while waiting for a frame) the rest."""

    def __init__(self, predictor: Predictor, chunk: int = 4, defer: bool = False) -> None:
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        self.predictor = predictor
        frames = predictor.clip_frames
        self.model = stream_model(predictor.model, frames, max(1, frames // 4))
        if not isinstance(self.model, StreamingModel):
            log.info("%s has no incremental pass: re-running a window of %d frames every %d",
                     type(predictor.model).__name__, self.model.window, self.model.period)
            chunk = 1  # a step's window ends at the frame that was just pushed
        self.chunk, self.defer = chunk, defer
        self.seen = 0  # frames pushed
        self.steps = 0  # steps returned
        self._pending: list[np.ndarray] = []
        self.closed = False

    def push(self, frame: np.ndarray) -> list[StreamStep]:
        """Add the next frame; the steps it completes (often none)."""
        if self.closed:
            raise ValueError("the stream is closed")
        if self.seen % self.predictor.clip.stride == 0:
            self._pending.append(frame)
        self.seen += 1
        if len(self._pending) < self.chunk:
            return []
        return self._run(flush=False)

    def precompute(self) -> None:
        """Run the work a deferred push left for later steps."""
        p = self.predictor
        with torch.inference_mode(), autocast(p.device, p.precision.dtype):
            self.model.precompute()

    def close(self) -> list[StreamStep]:
        """End the stream: the steps still held back."""
        if self.closed:
            return []
        self.closed = True
        return self._run(flush=True) if self.seen else []

    def _run(self, flush: bool) -> list[StreamStep]:
        p = self.predictor
        with torch.inference_mode(), autocast(p.device, p.precision.dtype):
            logits = []
            if self._pending:
                logits.append(self.model.push(p._frames_tensor(self._pending),
                                              defer=self.defer)[0])
                self._pending = []
            if flush:
                logits.append(self.model.flush()[0])
            rows = torch.cat(logits).float().cpu() if logits else []
        steps = []
        for row in rows:
            steps.append(self._step(row))
            self.steps += 1
        return steps

    def _step(self, logits: torch.Tensor) -> StreamStep:
        stride, index, seen = self.predictor.clip.stride, self.steps, self.seen
        if isinstance(self.model, StreamingModel):  # time step ``index`` of the features
            first = index * self.model.period * stride
            last = min(first + self.model.period * stride, seen) - 1
        else:  # the window that ended at the last frame
            first, last = max(0, seen - self.model.window * stride), seen - 1
        return StreamStep(index, first, last, seen, logits)


def timeline_steps(frames: int, fps: float, step_seconds: float = 1.0) -> int:
    """Steps of a timeline over ``frames`` frames at ``fps``: one per started ``step_seconds``."""
    return max(1, math.ceil(frames / fps / step_seconds - 1e-9))


def prediction_record(prediction: Prediction,
                      timeline: Sequence[TimelineStep] | None = None) -> dict:
    """The JSON record of one video (``mict predict --json``, ``POST /api/predict``): the
    prediction's fields, and ``timeline`` (one dict per step) when given."""
    record = prediction.to_dict()
    if timeline is not None:
        record["timeline"] = [asdict(s) for s in timeline]
    return record


def clip_indices(total: int, length: int, max_clips: int, stride: int = 1) -> list[list[int]]:
    """Frame indices of up to ``max_clips`` evenly spaced clips of every ``stride``-th frame:
    the data pipeline's multi-clip sampling, what ``mict evaluate --mode video --clips K``
    scores (looped when the video is shorter than a clip)."""
    return ClipSampler(frames=length, mode="multiclip", num_clips=max_clips,
                       stride=stride).clips(total)


def _check_top(top: int) -> None:
    if top < 1:
        raise ValueError(f"top must be >= 1, got {top}")


def _window_length(length: int, step_seconds: float) -> int:
    if length < 1 or step_seconds <= 0:
        raise ValueError(f"need window >= 1 and step_seconds > 0, got {length}, "
                         f"{step_seconds}")
    return length


class _FrameWindows:
    """Serves overlapping windows of a forward-read video, decoding each frame once; the frames
    ``keep`` names stay after their windows have passed (:meth:`kept_clips`)."""

    def __init__(self, reader: VideoReader, keep: set[int] | None = None) -> None:
        self.reader = reader
        self.keep = keep or set()
        self.cache: dict[int, np.ndarray] = {}
        self.kept: dict[int, np.ndarray] = {}
        self.next_index = 0

    def read(self, indices: list[int]) -> np.ndarray:
        self._decode(indices)
        first = min(indices)  # windows only move forward: earlier frames are done
        for i in [i for i in self.cache if i < first]:
            del self.cache[i]
        return np.stack([self.cache[i] for i in indices])

    def kept_clips(self, clips: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """The clips of kept frames ``clips`` lists (decoding, forward, any not reached yet)."""
        self._decode([i for clip in clips for i in clip])
        return [np.stack([self.kept[i] for i in clip]) for clip in clips]

    def _decode(self, indices: Sequence[int]) -> None:
        last = max(indices)  # kept frames passed on the way are decoded as well
        wanted = set(indices) | {i for i in self.keep if self.next_index <= i <= last}
        new = [i for i in sorted(wanted)
               if i >= self.next_index and i not in self.cache and i not in self.kept]
        if new:
            for i, frame in zip(new, self.reader.read(new), strict=True):
                self.cache[i] = frame
                if i in self.keep:
                    self.kept[i] = frame
            self.next_index = new[-1] + 1


def load(checkpoint: str | Path, device: str | torch.device = "cpu",
         clips: int = DEFAULT_CLIPS, amp: str = "none") -> Predictor:
    """A :class:`Predictor` for a checkpoint file or run folder (its ``best.pt``); ``device``
    and ``amp`` as ``mict evaluate`` takes them (``"auto"``: CUDA where present; bf16 where
    the device runs it natively)."""
    device = resolve_device(str(device))
    model, meta = load_model(checkpoint, device)
    return Predictor(model, meta, device, clips, amp)

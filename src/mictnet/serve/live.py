"""Live recognition: a capture thread reading a camera, a stream URL or a file, and the steps of
:meth:`~mictnet.inference.Predictor.stream` over what it reads (``mict live``).

The capture thread reads at the source's rate into a bounded queue; when inference falls behind,
the oldest frame is dropped (and counted), so capture is never blocked (a file read as fast as it
decodes, without ``realtime``, waits for inference instead: no frame is dropped). A camera or
stream that fails to deliver is reopened with back-off (0.5, 1, 2, 4... s) up to ``retries``
times; a file ends at its last frame (``realtime``: paced at its own frame rate).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from ..inference import Predictor, StreamStep

log = logging.getLogger(__name__)
FALLBACK_FPS = 25.0
READ_TIMEOUT_MS = 5000  # FFmpeg's open/read timeout for URLs: a stalled stream is noticed


@dataclass(frozen=True)
class Frame:
    index: int  # frames read from the source (dropped ones included)
    time: float  # stream time, seconds
    rgb: np.ndarray


def open_source(source: str) -> cv2.VideoCapture:
    """A capture of a camera index (``"0"``), a URL FFmpeg opens or a file."""
    if source.isdigit():
        cap = cv2.VideoCapture(int(source))
    else:
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, READ_TIMEOUT_MS,
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS]
        cap = cv2.VideoCapture(source, cv2.CAP_FFMPEG, params)
    if not cap.isOpened():
        cap.release()
        raise OSError(f"{source}: cannot open (not a camera index, a stream FFmpeg reads or a "
                      "video file)")
    return cap


class Capture(threading.Thread):
    """Reads ``source`` into a queue of at most ``buffer`` frames, dropping the oldest."""

    def __init__(self, source: str, realtime: bool = False, buffer: int = 32,
                 retries: int = 5, duration: float | None = None) -> None:
        super().__init__(daemon=True, name="mict-capture")
        self.source, self.realtime, self.retries = source, realtime, retries
        self.duration = duration
        self.is_file = not source.isdigit() and "://" not in source
        self.frames: queue.Queue[Frame | None] = queue.Queue(buffer)
        self.stop_event = threading.Event()
        self.dropped = self.read = 0
        self.error: str | None = None
        self.cap = open_source(source)
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 0 < fps < 1000 else FALLBACK_FPS

    def run(self) -> None:
        start, failures = time.monotonic(), 0
        try:
            while not self.stop_event.is_set():
                ok, bgr = self.cap.read()
                if not ok:
                    if self.is_file or not self._reconnect(failures):
                        break
                    failures += 1
                    continue
                failures = 0
                t = self.read / self.fps if self.is_file else time.monotonic() - start
                if self.duration is not None and t >= self.duration:
                    break
                if self.realtime and self.is_file:
                    time.sleep(max(0.0, start + t - time.monotonic()))
                self._put(Frame(self.read, t, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
                self.read += 1
        finally:
            self.cap.release()
            self._put(None)

    def _reconnect(self, failures: int) -> bool:
        if failures >= self.retries:
            self.error = f"{self.source}: no frames after {self.retries} reconnections"
            return False
        wait = 0.5 * 2 ** failures
        log.warning("%s: no frame; reconnecting in %.1f s (%d/%d)", self.source, wait,
                    failures + 1, self.retries)
        self.cap.release()
        if self.stop_event.wait(wait):
            return False
        try:
            self.cap = open_source(self.source)
        except OSError:
            self.cap = cv2.VideoCapture()
        return True

    def _put(self, frame: Frame | None) -> None:
        """Queue ``frame``; a live source (or a file played in real time) drops the oldest
        frame when the queue is full, a file read as fast as it decodes waits instead."""
        if self.is_file and not self.realtime:
            while not self.stop_event.is_set():
                try:
                    self.frames.put(frame, timeout=0.1)
                    return
                except queue.Full:
                    continue
            return
        while True:
            try:
                self.frames.put_nowait(frame)
                return
            except queue.Full:
                try:
                    self.frames.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def stop(self, timeout: float = 10.0) -> None:
        """Stop reading and wait for the thread to release the source (a capture destroyed
        while it reads aborts the process at exit)."""
        self.stop_event.set()
        if self.is_alive():
            self.join(timeout)

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.frames.get()) is not None:
            yield frame


@dataclass(frozen=True)
class LiveStep:
    """One output step: stream time of its last frame, top classes, the frames dropped so far."""

    time: float
    labels: list[str]
    probabilities: list[float]
    dropped: int
    latency: float  # seconds from the arrival of the step's last needed frame to its logits


def live_steps(predictor: Predictor, capture: Capture, top: int = 3, average: int = 1,
               chunk: int = 1, on_frame=None) -> Iterator[LiveStep]:
    """The steps of ``capture``'s frames; ``average`` smooths the probabilities over the last
    steps; ``on_frame(frame)`` sees every frame fed to the model (annotation). A push computes
    only what its steps need; the work for later steps runs while no frame is waiting."""
    times: dict[int, float] = {}
    arrived: dict[int, float] = {}
    recent: list = []
    stream = predictor.open_stream(chunk, defer=True)

    def step_of(step: StreamStep) -> LiveStep:
        nonlocal recent
        recent = [*recent[-(average - 1):], step.probabilities] if average > 1 else \
            [step.probabilities]
        labels, probabilities = predictor.top_classes(sum(recent) / len(recent), top)
        out = LiveStep(times[step.last_frame], labels, probabilities, capture.dropped,
                       _latency(step, arrived))
        for done in [i for i in times if i < step.first_frame]:
            del times[done], arrived[done]
        return out

    for n, frame in enumerate(capture):
        times[n], arrived[n] = frame.time, time.monotonic()
        if on_frame is not None:
            on_frame(frame)
        for step in stream.push(frame.rgb):
            yield step_of(step)
        if capture.frames.empty():
            stream.precompute()
    for step in stream.close():
        yield step_of(step)


def _latency(step: StreamStep, arrived: dict[int, float]) -> float:
    return time.monotonic() - arrived.get(step.emitted_after - 1, time.monotonic())


class Annotator:
    """Writes the frames with the latest top labels drawn on them (``--out``)."""

    def __init__(self, path: str, fps: float) -> None:
        self.path, self.fps, self.writer, self.text = path, fps, None, "..."

    def __call__(self, frame: Frame) -> None:
        bgr = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR)
        if self.writer is None:
            h, w = bgr.shape[:2]
            self.writer = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*"mp4v"), self.fps,
                                          (w, h))
            if not self.writer.isOpened():
                raise OSError(f"{self.path}: cannot write a video here")
        scale = max(0.4, bgr.shape[0] / 480)
        cv2.putText(bgr, self.text, (8, int(24 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale,
                    (255, 255, 255), max(1, int(2 * scale)), cv2.LINE_AA)
        self.writer.write(bgr)

    def label(self, step: LiveStep) -> None:
        self.text = "  ".join(f"{lb} {p:.0%}" for lb, p in
                              zip(step.labels, step.probabilities, strict=True))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()

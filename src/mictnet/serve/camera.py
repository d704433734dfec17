"""The page's camera mode: the browser sends the camera's frames in chunks (``POST
/api/camera/ID``, raw RGBA at the size the server names) and gets back the steps those frames
complete, each frame computed once (:class:`~mictnet.inference.FrameStream`).

A session is opened by ``POST /api/camera`` and ended by ``DELETE /api/camera/ID`` (its last
steps) or, left alone for ``idle_seconds``, dropped; at most ``max_sessions`` are open at once.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ..inference import FALLBACK_FPS, FrameStream, Predictor, StreamStep

MAX_FRAMES_PER_CHUNK = 64


class CameraError(ValueError):
    """A request the camera mode refuses: ``status`` is its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Session:
    stream: FrameStream
    used: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)


class CameraSessions:
    """The open camera streams of one server. Frames are sent ``width × height`` (the model's
    resize, so the browser scales and the server only crops), a few per request."""

    def __init__(self, predictor: Predictor, max_sessions: int = 4,
                 idle_seconds: float = 60.0, top: int = 3) -> None:
        self.predictor, self.max_sessions, self.idle_seconds = predictor, max_sessions, idle_seconds
        self.top = top
        self.width, self.height = predictor.clip.resize
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self) -> dict:
        """A new session: its id, the frame size to send and the frames per second to send at
        (:data:`~mictnet.inference.FALLBACK_FPS`, UCF-101's rate)."""
        if self.predictor.clip.modality != "rgb":
            raise CameraError(422, f"the model takes {self.predictor.clip.modality}, not a "
                                   "camera's RGB frames")
        with self._lock:
            now = time.monotonic()
            for sid in [s for s, v in self._sessions.items() if now - v.used > self.idle_seconds]:
                del self._sessions[sid]
            if len(self._sessions) >= self.max_sessions:
                raise CameraError(503, f"{self.max_sessions} camera streams are open already; "
                                       "try again when one ends")
            sid = secrets.token_hex(8)
            self._sessions[sid] = Session(self.predictor.open_stream())
        return {"session": sid, "width": self.width, "height": self.height, "fps": FALLBACK_FPS,
                "max_frames": MAX_FRAMES_PER_CHUNK}

    @property
    def max_body(self) -> int:
        """Bytes of the largest chunk of frames."""
        return MAX_FRAMES_PER_CHUNK * self.width * self.height * 4

    def push(self, sid: str, body: bytes, count: int) -> dict:
        """Feed ``count`` RGBA frames (``body``); the steps they complete."""
        session = self._session(sid)
        frame_bytes = self.width * self.height * 4
        if not 1 <= count <= MAX_FRAMES_PER_CHUNK:
            raise CameraError(422, f"frames: 1 to {MAX_FRAMES_PER_CHUNK} per request, got "
                                   f"{count}")
        if len(body) != count * frame_bytes:
            raise CameraError(422, f"{count} RGBA frames of {self.width}x{self.height} are "
                                   f"{count * frame_bytes} bytes, got {len(body)}")
        rgba = np.frombuffer(body, np.uint8).reshape(count, self.height, self.width, 4)
        with session.lock:
            steps = [s for frame in rgba for s in session.stream.push(frame[..., :3])]
            session.used = time.monotonic()
            return self._answer(session, steps)

    def close(self, sid: str) -> dict:
        """End the session: its last steps."""
        session = self._session(sid)
        with self._lock:
            self._sessions.pop(sid, None)
        with session.lock:
            return self._answer(session, session.stream.close())

    def _session(self, sid: str) -> Session:
        with self._lock:
            session = self._sessions.get(sid)
        if session is None:
            raise CameraError(404, f"no open camera stream {sid!r} (ended, or idle for "
                                   f"{self.idle_seconds:g} s)")
        return session

    def _answer(self, session: Session, steps: list[StreamStep]) -> dict:
        out = []
        for step in steps:
            labels, probabilities = self.predictor.top_classes(step.probabilities, self.top)
            out.append({"index": step.index, "first_frame": step.first_frame,
                        "last_frame": step.last_frame,
                        "top": [{"label": label, "probability": p}
                                for label, p in zip(labels, probabilities, strict=True)]})
        return {"frames": session.stream.seen, "steps": out}

"""Graceful stopping: SIGTERM or a first Ctrl-C ask a loop to stop at its next step boundary;
a second Ctrl-C stops at once (``KeyboardInterrupt``)."""

from __future__ import annotations

import logging
import signal
import threading
from types import TracebackType
from typing import Any

log = logging.getLogger("mictnet")


class StopRequest:
    """While entered (in the main thread; elsewhere signals cannot be caught), SIGINT and SIGTERM
    set :attr:`requested` instead of killing the process; the previous handlers come back on
    exit. ``announce``: log that the loop will stop after its current step."""

    def __init__(self, announce: bool = True) -> None:
        self.requested = False
        self.announce = announce
        self._previous: dict[int, Any] = {}

    def _request(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        if self.announce:
            log.warning("stopping after this step (checkpoint follows); Ctrl-C again to stop "
                        "at once")

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
            for s in self._previous:
                signal.signal(s, self._request)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

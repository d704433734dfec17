"""The graceful-stop signal handlers, apart from any training loop."""

import os
import signal

import pytest

from mictnet.engine.stop import StopRequest


def test_signals_request_a_stop_and_the_old_handlers_come_back():
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with StopRequest(announce=False) as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C stops at once
            os.kill(os.getpid(), signal.SIGINT)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_a_first_ctrl_c_only_asks(caplog):
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGINT)
    assert stop.requested
    assert "stopping after this step" in caplog.text

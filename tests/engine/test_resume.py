"""A run killed mid-epoch (SIGKILL, or stopped by SIGTERM) and resumed ends with the same weights
as an uninterrupted run with the same seed (CPU, deterministic algorithms, one thread)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mictnet.engine.checkpoint import load_checkpoint
from mictnet.engine.runlog import read_metrics_csv

pytestmark = pytest.mark.slow  # trains models

CHILD = Path(__file__).parents[1] / "tiny_clips.py"
# 3 epochs of 6 steps, a checkpoint after every step, 15 ms per clip "decoding" (~0.12 s/step)
RUN = {"schedule": {"epochs": 3, "milestones": [2]}, "runtime": {"checkpoint_every": 1},
       "dataset": {"train": 48, "delay": 0.015}}


def start(run_dir: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(CHILD.parent), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(CHILD), str(run_dir), json.dumps(RUN), *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> None:
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory):
    """An uninterrupted run, started once and running beside the tests that need it."""
    run_dir = tmp_path_factory.mktemp("reference")
    proc = start(run_dir)

    def done() -> Path:
        if proc.returncode is None:
            finish(proc)
        return run_dir

    yield done
    if proc.returncode is None:
        proc.kill()
        proc.wait()


def training_position(run_dir: Path) -> tuple[int, int] | None:
    """(epoch, step in epoch) of the run's last complete checkpoint, if any."""
    try:
        state = load_checkpoint(run_dir / "last.pt")["training_state"]
    except (FileNotFoundError, ValueError):
        return None
    return state["epoch"], state["step_in_epoch"]


def wait_for_mid_epoch_checkpoint(run_dir: Path, proc: subprocess.Popen) -> tuple[int, int]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be stopped mid-epoch"
        pos = training_position(run_dir)
        if pos is not None and pos[0] >= 1 and 1 <= pos[1] <= 5:  # after an epoch's records
            return pos
        time.sleep(0.01)
    raise AssertionError("no mid-epoch checkpoint appeared")


def final_state(run_dir: Path) -> tuple[dict[str, torch.Tensor], list[dict]]:
    ckpt = load_checkpoint(run_dir / "last.pt")
    timing = ("epoch_seconds", "clips_per_s", "data_wait")
    history = [{k: v for k, v in row.items() if k not in timing}
               for row in read_metrics_csv(run_dir / "metrics.csv")]
    return ckpt["state_dict"], history


def assert_same_run(a: Path, b: Path) -> None:
    weights_a, history_a = final_state(a)
    weights_b, history_b = final_state(b)
    assert weights_a.keys() == weights_b.keys()
    for key in weights_a:
        assert torch.equal(weights_a[key], weights_b[key]), key
    assert history_a == history_b
    assert len(history_a) == 3


def test_sigkill_mid_epoch_then_resume_equals_uninterrupted(tmp_path: Path, reference) -> None:
    killed = tmp_path / "killed"
    proc = start(killed)
    pos = wait_for_mid_epoch_checkpoint(killed, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    resumed_from = training_position(killed)
    assert resumed_from is not None and resumed_from >= pos  # the kill lands mid-epoch
    assert resumed_from[0] < 3
    finish(start(killed, "--resume"))
    assert_same_run(reference(), killed)
    assert not list(killed.glob(".*.tmp"))  # no temp file left behind by the atomic writes


def test_sigterm_stops_at_a_step_with_a_checkpoint_and_resumes_identically(
        tmp_path: Path, reference) -> None:
    stopped = tmp_path / "stopped"
    proc = start(stopped)
    wait_for_mid_epoch_checkpoint(stopped, proc)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "mict train --resume" in out
    pos = training_position(stopped)
    assert pos is not None and pos[0] < 3
    finish(start(stopped, "--resume"))
    assert_same_run(reference(), stopped)

"""2-process DDP on CPU (torchrun, gloo) equals 1 process with the same global batch.

What is compared, and why it is the honest formulation: DistributedDataParallel averages the
gradients of the processes, which equals one process accumulating the same micro-batches. With
BatchNorm in training mode each forward pass normalises by its own batch, so the 1-process run
uses micro-batches of 4 (accumulation 2) — the very groups of 4 clips the two processes see (the
sampler gives each process a contiguous share of every global batch). Dropout is off: its masks
come from per-process generators. Then parameters and per-epoch training loss/accuracy must match
up to float summation order. BatchNorm *running statistics* legitimately differ (DDP keeps the
main process's, updated by its own micro-batches; one process updates them with both), so they
are not compared; instead the DDP run's test accuracy, measured in shards by both processes, must
equal a 1-process evaluation of the checkpoint it saved.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import Subset

from mictnet.engine.checkpoint import load_checkpoint, load_model
from mictnet.engine.evaluate import evaluate_model
from mictnet.engine.runlog import read_metrics_csv
from tiny_clips import MovingSquares

pytestmark = pytest.mark.slow  # trains models

CHILD = Path(__file__).parents[1] / "tiny_clips.py"
BASE = {"model": {"dropout": 0.0}, "schedule": {"epochs": 2, "milestones": [1]},
        "optim": {"batch_size": 8}, "runtime": {"keep_resume": True},  # every process's RNG
        "dataset": {"train": 48, "test": 15}}


def run(run_dir: Path, processes: int, micro_batch: int) -> None:
    config = {**BASE, "optim": {**BASE["optim"], "micro_batch_size": micro_batch}}
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
                 f"--nproc_per_node={processes}"] if processes > 1 else [sys.executable])
    env = {**os.environ, "PYTHONPATH": str(CHILD.parent), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([*launcher, str(CHILD), str(run_dir), json.dumps(config)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_two_process_ddp_equals_one_process(tmp_path: Path) -> None:
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    run(tmp_path / "ddp", processes=2, micro_batch=4)
    run(tmp_path / "single", processes=1, micro_batch=4)
    ddp = load_checkpoint(tmp_path / "ddp" / "last.pt")
    single = load_checkpoint(tmp_path / "single" / "last.pt")
    assert ddp["training_state"]["world_size"] == 2
    assert len(ddp["training_state"]["rng"]) == 2  # every process's generators are kept
    assert not any(k.startswith("module.") for k in ddp["state_dict"])
    params = [k for k in single["state_dict"] if "running_" not in k and "num_batches" not in k]
    for key in params:
        torch.testing.assert_close(ddp["state_dict"][key], single["state_dict"][key],
                                   rtol=1e-4, atol=1e-5, msg=key)
    rows_ddp = read_metrics_csv(tmp_path / "ddp" / "metrics.csv")
    rows_single = read_metrics_csv(tmp_path / "single" / "metrics.csv")
    assert [r["step"] for r in rows_ddp] == [r["step"] for r in rows_single] == [6, 12]
    for a, b in zip(rows_ddp, rows_single, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["train_top1"] == b["train_top1"]
    # the sharded test evaluation (15 clips: 8 + 7) counted every clip exactly once
    model, meta = load_model(tmp_path / "ddp" / "last.pt")
    test = MovingSquares(15, 4, seed=1, jitter=False)
    report = evaluate_model(model, Subset(test, range(15)), meta.classes, progress=False)
    assert report.metrics.top1 == pytest.approx(rows_ddp[-1]["test_top1"])

"""Gradient accumulation gives the large-batch result.

Exactness needs the loss of the large batch to be the mean of the micro-batch losses. Dropout is
random per forward pass, so it is off, and BatchNorm in training mode normalises each
micro-batch by its own statistics — a batch of 8 and four micro-batches of 2 are then different
computations, not a rounding difference. So the comparison runs with ``model.freeze_bn`` (BatchNorm
uses its running statistics, as when fine-tuning from ImageNet with small micro-batches), where
accumulation must equal the large batch up to float summation order. The 2-process DDP test
covers training-mode BatchNorm.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mictnet.engine.batching import build_loaders
from mictnet.engine.train import Trainer
from mictnet.models import build_model
from tiny_clips import MovingSquares, tiny_config

pytestmark = pytest.mark.slow  # trains models


def train_two_steps(run_dir: Path, micro_batch: int) -> dict[str, torch.Tensor]:
    cfg = tiny_config(
        model={"name": "mict_resnet18", "dropout": 0.0, "freeze_bn": True},
        optim={"lr": 0.02, "momentum": 0.9, "weight_decay": 5e-4, "batch_size": 8,
               "micro_batch_size": micro_batch},
        schedule={"epochs": 1, "milestones": []})
    train = MovingSquares(16, seed=0)
    trainer = Trainer(cfg, run_dir, build_loaders(cfg, train, None), train.classes)
    assert trainer.accumulation == 8 // micro_batch
    result = trainer.fit()
    assert result.global_step == 2
    return {k: v.detach().clone() for k, v in trainer.model.named_parameters()}


def test_accumulated_micro_batches_equal_the_large_batch(tmp_path: Path) -> None:
    large = train_two_steps(tmp_path / "large", 8)
    accumulated = train_two_steps(tmp_path / "accumulated", 2)
    torch.manual_seed(0)
    initial = dict(build_model("mict_resnet18", 4, dropout=0.0).named_parameters())
    moved = [k for k in large if not torch.equal(large[k], initial[k])]
    assert len(moved) > 0.9 * len(large)  # the steps changed (nearly) every tensor
    for key in large:
        torch.testing.assert_close(accumulated[key], large[key], rtol=1e-4, atol=1e-6,
                                   msg=key)

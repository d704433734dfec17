"""Learning-rate schedules as a function of the optimiser step (fractional epochs)."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR

from .train_config import ScheduleConfig


class LRFactor:
    """The factor applied to the base learning rate after ``step`` optimiser steps.

    Its attributes are plain numbers, so ``LambdaLR.state_dict()`` stays checkpoint-safe.
    """

    def __init__(self, config: ScheduleConfig, steps_per_epoch: int) -> None:
        self.kind = config.kind
        self.epochs = config.epochs
        self.milestones = list(config.milestones)
        self.gamma = config.gamma
        self.warmup = config.warmup_epochs
        self.steps_per_epoch = steps_per_epoch

    def __call__(self, step: int) -> float:
        epoch = step / self.steps_per_epoch
        if epoch < self.warmup:
            return 0.01 + 0.99 * epoch / self.warmup
        if self.kind == "step":
            return self.gamma ** sum(epoch >= m for m in self.milestones)
        span = max(self.epochs - self.warmup, 1e-9)
        return 0.5 * (1.0 + math.cos(math.pi * min((epoch - self.warmup) / span, 1.0)))


def build_scheduler(optimizer: torch.optim.Optimizer, config: ScheduleConfig,
                    steps_per_epoch: int) -> LambdaLR:
    """A ``LambdaLR`` to be stepped after every optimiser step."""
    return LambdaLR(optimizer, LRFactor(config, steps_per_epoch))

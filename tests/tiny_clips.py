"""Test helpers for the engine: in-memory moving-square clips, a tiny video net, a training child.

``MovingSquares`` clips show a bright square moving right, left, down or up over noise; the class
is the direction, so only motion tells classes apart. Each item is a pure function of its index
plus a small random brightness jitter drawn from torch's global generator (like a real training
augmentation), which exercises the per-sample seeding of the training loop.

Run as a script, it trains in a run folder (used by the resume and DDP tests, in subprocesses):
``python tests/tiny_clips.py RUNDIR '{"optim": {"lr": 0.1}}' [--resume]``.
"""

from __future__ import annotations

import json
import sys
import time

import torch
from torch import nn
from torch.utils.data import Dataset

from mictnet.engine.train_config import RuntimeConfig, TrainConfig, config_from_dict
from mictnet.models import register_model

DIRECTIONS = ("right", "left", "down", "up")


class MovingSquares(Dataset):
    """``n`` clips ``3×frames×size×size``; label = direction of the moving square."""

    def __init__(self, n: int, num_classes: int = 4, frames: int = 8, size: int = 32,
                 seed: int = 0, jitter: bool = True, delay: float = 0.0) -> None:
        self.n, self.num_classes, self.frames, self.size = n, num_classes, frames, size
        self.seed, self.jitter, self.delay = seed, jitter, delay
        self.classes = list(DIRECTIONS[:num_classes])

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not 0 <= index < self.n:
            raise IndexError(index)
        time.sleep(self.delay)  # stands in for video decoding, so a test can stop a run midway
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        label = index % self.num_classes
        t, s = self.frames, self.size
        side, speed = s // 5, max(1, s // (2 * t))
        travel = speed * (t - 1)
        clip = torch.rand(3, t, s, s, generator=g) * 0.4
        color = 0.6 + 0.4 * torch.rand(3, 1, 1, generator=g)
        lo, hi = 0, s - side - travel
        x0 = int(torch.randint(lo, hi + 1, (1,), generator=g))
        y0 = int(torch.randint(0, s - side + 1, (1,), generator=g))
        for f in range(t):
            d = speed * f
            x, y = {0: (x0 + d, y0), 1: (x0 + travel - d, y0),
                    2: (y0, x0 + d), 3: (y0, x0 + travel - d)}[label]
            clip[:, f, y:y + side, x:x + side] = color
        if self.jitter:
            clip = clip * (0.9 + 0.2 * torch.rand(1))  # global RNG: a "training augmentation"
        return (clip - 0.5) / 0.25, label


class TinyVideoNet(nn.Module):
    """Two 3D convolutions with BatchNorm, global pooling, dropout, a linear classifier."""

    def __init__(self, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv3d(3, 8, 3, padding=1, bias=False), nn.BatchNorm3d(8), nn.ReLU(),
            nn.Conv3d(8, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm3d(16), nn.ReLU(),
            nn.AdaptiveAvgPool3d(1), nn.Flatten())
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.features(x)))


@register_model
def tiny_video_net(num_classes: int = 4, dropout: float = 0.0) -> TinyVideoNet:
    """A few-thousand-parameter video classifier for fast engine tests."""
    return TinyVideoNet(num_classes, dropout)


def tiny_config(**sections: dict) -> TrainConfig:
    """A CPU, single-thread, quiet configuration of the tiny net, updated by ``sections``."""
    base = TrainConfig(runtime=RuntimeConfig(device="cpu", amp="none", threads=1,
                                             deterministic=True, progress=False,
                                             tensorboard=False, checkpoint_minutes=0))
    defaults = {
        "model": {"name": "tiny_video_net", "dropout": 0.2},
        "data": {"frames": 8, "crop_size": 32, "workers": 0},
        "optim": {"lr": 0.05, "batch_size": 8, "weight_decay": 1e-4},
        "schedule": {"epochs": 2, "milestones": [1]},
    }
    for key, value in sections.items():
        defaults[key] = {**defaults.get(key, {}), **value}
    return config_from_dict(defaults, base)


def main(argv: list[str]) -> int:
    from mictnet.engine.batching import build_loaders
    from mictnet.engine.distributed import cleanup_distributed
    from mictnet.engine.train import Trainer

    run_dir, overrides = argv[0], json.loads(argv[1])
    resume = "--resume" in argv[2:]
    data = overrides.pop("dataset", {})
    cfg = tiny_config(**overrides)
    train = MovingSquares(data.get("train", 48), 4, seed=0, delay=data.get("delay", 0.0))
    test = MovingSquares(data.get("test", 16), 4, seed=1, jitter=False)
    try:
        Trainer(cfg, run_dir, build_loaders(cfg, train, test), train.classes,
                resume=resume).fit()
    finally:
        cleanup_distributed()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

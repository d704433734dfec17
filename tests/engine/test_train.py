"""Training learns, fills its run folder, and stops cleanly on a non-finite loss."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset

from mictnet.engine.batching import build_loaders
from mictnet.engine.checkpoint import load_checkpoint, load_model
from mictnet.engine.evaluate import evaluate_model
from mictnet.engine.runlog import read_metrics_csv
from mictnet.engine.train import NonFiniteLossError, Trainer, TrainResult
from mictnet.engine.train_config import load_config
from tiny_clips import MovingSquares, tiny_config

pytestmark = pytest.mark.slow  # trains models


def motion_run(tmp_path: Path, model: str, seed: int, **runtime) -> TrainResult:
    """4 directions of a moving square (chance 25%; one frame cannot tell them apart, its
    position can at best tell horizontal from vertical: 50%) learnt at 8×32×32 from scratch."""
    cfg = tiny_config(model={"name": model, "dropout": 0.0},
                      optim={"lr": 0.01, "batch_size": 8},
                      schedule={"epochs": 6, "kind": "cosine", "milestones": []},
                      runtime={"seed": seed, **runtime})
    train = MovingSquares(64, seed=2 * seed)
    test = MovingSquares(40, seed=2 * seed + 1, jitter=False)
    return Trainer(cfg, tmp_path / "run", build_loaders(cfg, train, test), train.classes).fit()


@pytest.mark.outcome
def test_mict_resnet18_learns_motion_direction(tmp_path: Path, outcome_seed: int,
                                               outcome) -> None:
    result = motion_run(tmp_path, "mict_resnet18", outcome_seed, tensorboard=True)
    cfg = load_config(tmp_path / "run" / "config.yaml")
    test = MovingSquares(40, seed=2 * outcome_seed + 1, jitter=False)

    assert result.epochs_done == 6 and result.global_step == 48 and not result.interrupted
    assert result.best_top1 is not None
    outcome("mict_resnet18 motion top-1", result.best_top1, at_least=0.6)
    run = tmp_path / "run"
    for name in ("config.yaml", "last.pt", "best.pt", "metrics.csv", "train.log"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert cfg.model.name == "mict_resnet18" and cfg.runtime.seed == outcome_seed
    rows = read_metrics_csv(run / "metrics.csv")
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert all(0 < r["data_wait"] < 1 for r in rows)  # the loader's share of the training time
    assert "best test top-1" in (run / "train.log").read_text()
    # best.pt rebuilds alone and scores what training measured
    model, meta = load_model(run / "best.pt")
    report = evaluate_model(model, test, meta.classes, progress=False)
    assert report.metrics.top1 == pytest.approx(result.best_top1)
    assert meta.metrics["epoch"] == result.best_epoch


@pytest.mark.outcome
def test_the_per_frame_baseline_cannot_learn_motion_direction(tmp_path: Path, outcome_seed: int,
                                                              outcome) -> None:
    """The control: the same recipe on a 2D ResNet-18 run on every frame fails the motion
    threshold (60%): one frame at a time, positions can at best tell horizontal from vertical
    (50%), so the motion tests' 60% needs motion."""
    result = motion_run(tmp_path, "resnet2d_18", outcome_seed)
    assert result.epochs_done == 6 and result.best_top1 is not None
    outcome("resnet2d_18 (per frame) motion top-1", result.best_top1, at_most=0.6)


class PoisonAfter(Dataset):
    """``dataset`` whose items turn to inf after ``after`` reads (a diverging run, on cue)."""

    def __init__(self, dataset: Dataset, after: int) -> None:
        self.dataset, self.after, self.reads = dataset, after, 0
        self.classes = dataset.classes

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        self.reads += 1
        clip, label = self.dataset[index]
        return (clip * math.inf if self.reads > self.after else clip), label


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path: Path) -> None:
    cfg = tiny_config(schedule={"epochs": 3, "milestones": []}, optim={"batch_size": 4})
    train = PoisonAfter(MovingSquares(16, seed=0), after=16 + 6)  # epoch 2, second step
    loaders = build_loaders(cfg, train, MovingSquares(4, seed=1))
    trainer = Trainer(cfg, tmp_path / "run", loaders, train.classes)
    with pytest.raises(NonFiniteLossError, match=r"loss became nan at epoch 2, step 2") as err:
        trainer.fit()
    assert "last good checkpoint is kept" in str(err.value)
    assert "mict train --resume" in str(err.value)
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["training_state"]["epoch"] == 1 and ckpt["training_state"]["global_step"] == 4
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())

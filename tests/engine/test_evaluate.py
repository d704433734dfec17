"""Evaluation metrics on a hand-made prediction set, score averaging, reports and plots."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from mictnet.engine.evaluate import evaluate_model
from mictnet.engine.metrics import (
    ClassificationMetrics,
    confusion_matrix,
    mean_class_accuracy,
    per_class_accuracy,
    topk_correct,
)
from mictnet.engine.plots import plot_accuracy_vs_length, plot_confusion, plot_training_curves
from mictnet.engine.runlog import write_metrics_csv

# 6 samples, 4 classes (the last has no samples). Predictions: 0, 1, 1, 1, 0, 2.
SCORES = torch.tensor([
    [0.70, 0.10, 0.10, 0.10],  # label 0: right
    [0.30, 0.40, 0.20, 0.10],  # label 0: wrong, label second
    [0.10, 0.80, 0.05, 0.05],  # label 1: right
    [0.20, 0.50, 0.10, 0.20],  # label 1: right
    [0.50, 0.10, 0.15, 0.25],  # label 2: wrong, label third
    [0.10, 0.10, 0.60, 0.20],  # label 2: right
])
LABELS = torch.tensor([0, 0, 1, 1, 2, 2])
CONFUSION = [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]


def test_topk_counts() -> None:
    assert topk_correct(SCORES, LABELS, (1, 2, 3, 5)) == [4, 5, 6, 6]


def test_confusion_and_class_accuracies() -> None:
    cm = confusion_matrix(SCORES.argmax(1), LABELS, 4)
    assert cm.tolist() == CONFUSION
    acc = per_class_accuracy(cm)
    assert acc[:3].tolist() == [0.5, 1.0, 0.5] and math.isnan(acc[3])
    assert mean_class_accuracy(cm) == pytest.approx(2 / 3)  # the empty class is left out


def test_classification_metrics() -> None:
    m = ClassificationMetrics.from_scores(SCORES, LABELS)
    assert (m.num_samples, m.top1, m.top5) == (6, pytest.approx(4 / 6), 1.0)
    assert m.mean_class_accuracy == pytest.approx(2 / 3)
    assert m.confusion == CONFUSION
    with pytest.raises(ValueError, match="labels outside"):
        ClassificationMetrics.from_scores(SCORES, torch.tensor([0, 0, 1, 1, 2, 4]))


class ChannelMeans(nn.Module):
    """Logits = the clip's mean value in each of its 3 channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3, 4))


class ClipsOf(torch.utils.data.Dataset):
    """Items whose channel means are given logits; ``(K, 3)`` logits make K clips per video."""

    classes = ["a", "b", "c"]

    def __init__(self, items: list[tuple[list, int]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        logits, label = self.items[i]
        t = torch.tensor(logits, dtype=torch.float32)
        return t[..., None, None, None].expand(*t.shape, 2, 4, 4).clone(), label


def test_evaluate_model_clip_mode_and_report(tmp_path: Path) -> None:
    data = ClipsOf([([3.0, 0.0, 0.0], 0), ([0.0, 2.0, 1.0], 2), ([0.0, 0.0, 5.0], 2)])
    report = evaluate_model(ChannelMeans(), data, data.classes, batch_size=2, progress=False,
                            source={"dataset": "hand-made"})
    m = report.metrics
    assert m.top1 == pytest.approx(2 / 3) and m.confusion == [[1, 0, 0], [0, 0, 0], [0, 1, 1]]
    saved = json.loads(report.save_json(tmp_path / "r.json").read_text())
    assert saved["dataset"] == "hand-made" and saved["top1"] == pytest.approx(2 / 3)
    assert saved["per_class_accuracy"] == {"a": 1.0, "b": None, "c": 0.5}  # NaN -> null
    assert saved["mean_class_accuracy"] == pytest.approx(0.75)


def test_video_mode_averages_softmax_over_clips() -> None:
    # clip 1 is sure of "b"; clip 2 hesitates between "a" and "c". Averaged probabilities say
    # "b" (about 0.26 / 0.50 / 0.24); averaged logits would say "a" (15 / 5 / 14.95).
    clips = [[0.0, 10.0, 0.0], [30.0, 0.0, 29.9]]
    data = ClipsOf([(clips, 1)])
    report = evaluate_model(ChannelMeans(), data, data.classes, mode="video", frames=2, clips=2,
                            batch_size=1, progress=False)
    assert report.metrics.top1 == 1.0
    assert report.clips == 2 and "2 clips of 2 frames" in report.summary()


def test_class_names_must_match() -> None:
    data = ClipsOf([([1.0, 0.0, 0.0], 0)])
    with pytest.raises(ValueError, match="classes differ"):
        evaluate_model(ChannelMeans(), data, ["a", "c", "b"], progress=False)


def is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_write_pngs(tmp_path: Path) -> None:
    assert is_png(plot_confusion(CONFUSION, ["a", "b", "c", "d"], tmp_path / "cm.png"))
    history = [{"epoch": e, "step": 10 * e, "lr": 0.1, "train_loss": 2.0 / e,
                "train_top1": 0.2 * e, "test_loss": 2.2 / e if e % 2 == 0 else None,
                "test_top1": 0.18 * e if e % 2 == 0 else None, "test_top5": 0.9,
                "epoch_seconds": 1.0, "clips_per_s": 10.0} for e in range(1, 5)]
    (tmp_path / "run").mkdir()
    write_metrics_csv(tmp_path / "run" / "metrics.csv", history)
    assert is_png(plot_training_curves([tmp_path / "run"], tmp_path / "curves.png"))
    curves = {"m18": [(16, 0.6), (32, 0.65), (300, 0.69)], "m34": [(16, 0.62), (300, 0.73)]}
    assert is_png(plot_accuracy_vs_length(curves, tmp_path / "len.png"))

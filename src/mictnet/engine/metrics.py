"""Classification metrics: top-k accuracy, confusion matrix, per-class and mean class accuracy."""

from __future__ import annotations

from dataclasses import dataclass

import torch


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)
                 ) -> list[int]:
    """How many rows have their label among the ``k`` highest scores, for each ``k``.

    With fewer than ``k`` classes every row counts as correct for that ``k``.
    """
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices
    hits = top == labels.view(-1, 1)
    return [int(hits[:, :min(k, kmax)].any(dim=1).sum()) for k in ks]


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int
                     ) -> torch.Tensor:
    """``C×C`` counts: row = true class, column = predicted class."""
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"labels outside 0..{num_classes - 1}")
    flat = labels.long() * num_classes + predictions.long()
    return torch.bincount(flat, minlength=num_classes ** 2).view(num_classes, num_classes)


def per_class_accuracy(confusion: torch.Tensor) -> torch.Tensor:
    """Recall of every class; NaN for classes with no samples."""
    totals = confusion.sum(dim=1).double()
    return confusion.diagonal().double() / totals  # 0/0 -> nan


def mean_class_accuracy(confusion: torch.Tensor) -> float:
    """Mean of the per-class accuracies over the classes that have samples."""
    acc = per_class_accuracy(confusion)
    present = ~acc.isnan()
    return float(acc[present].mean()) if present.any() else float("nan")


@dataclass
class ClassificationMetrics:
    """Everything the evaluation report holds about one set of predictions."""

    num_samples: int
    top1: float
    top5: float
    mean_class_accuracy: float
    per_class_accuracy: list[float]  # NaN where a class has no samples
    confusion: list[list[int]]

    @classmethod
    def from_scores(cls, scores: torch.Tensor, labels: torch.Tensor) -> ClassificationMetrics:
        """From ``N×C`` scores (logits or probabilities) and ``N`` integer labels."""
        if scores.ndim != 2 or len(scores) != len(labels):
            raise ValueError(f"expected N×C scores and N labels, got {tuple(scores.shape)} and "
                             f"{tuple(labels.shape)}")
        n, num_classes = scores.shape
        if n == 0:
            raise ValueError("no predictions to score")
        top1, top5 = topk_correct(scores, labels, (1, 5))
        cm = confusion_matrix(scores.argmax(dim=1), labels, num_classes)
        return cls(n, top1 / n, top5 / n, mean_class_accuracy(cm),
                   per_class_accuracy(cm).tolist(), cm.tolist())

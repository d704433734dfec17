"""Evaluation of a trained model on a test set: scores, metrics, per-video predictions and the
JSON report.

A dataset item is ``(clip, label)`` with ``clip`` ``3×T×H×W`` (one clip) or ``K×3×T×H×W``
(several clips of one video): the softmax scores of a video's clips are averaged. A test set
whose labels are all :data:`~mictnet.data.datasets.UNLABELLED` (the Kinetics-600/700 test CSVs)
has predictions but no metrics.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..data.datasets import UNLABELLED, VideoDataset
from ..data.kinetics import Skipped
from . import distributed as D
from .metrics import ClassificationMetrics, topk_correct
from .precision import autocast

TOP_PREDICTIONS = 5  # classes per video in predictions.csv


@dataclass
class EvalReport:
    """Metrics (``None`` for unlabelled videos), per-video predictions and what was evaluated."""

    metrics: ClassificationMetrics | None
    classes: list[str]
    mode: str  # "clip" or "video"
    frames: int | None  # frames per clip (None: whole videos)
    clips: int  # clips averaged per video
    seconds: float
    source: dict[str, Any] = field(default_factory=dict)  # checkpoint, dataset, root, split
    predictions: list[dict[str, Any]] = field(default_factory=list)  # one row per video
    skipped: list[Skipped] = field(default_factory=list)  # Kinetics clips left out

    def to_dict(self) -> dict[str, Any]:
        m = self.metrics
        scores = {} if m is None else {
            "top1": m.top1, "top5": m.top5,
            "mean_class_accuracy": _finite(m.mean_class_accuracy),
            "per_class_accuracy": {c: _finite(a) for c, a in zip(self.classes,
                                                                 m.per_class_accuracy,
                                                                 strict=True)},
        }
        return {
            **self.source, "mode": self.mode, "frames": self.frames, "clips": self.clips,
            "num_samples": len(self.predictions), "skipped_videos": len(self.skipped),
            "labelled": m is not None, **scores, "classes": self.classes,
            **({} if m is None else {"confusion": m.confusion}),
            "seconds": round(self.seconds, 2),
        }

    def save_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    def save_predictions(self, path: str | Path) -> Path:
        """``predictions.csv``: per video its name (Kinetics: YouTube id and times), its label
        (empty when unknown) and the top classes with their scores."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        names = list(dict.fromkeys(k for row in self.predictions for k in row))
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=names)
            writer.writeheader()
            writer.writerows(self.predictions)
        return path

    def summary(self) -> str:
        m = self.metrics
        what = f"{self.clips} clips of {self.frames} frames" if self.clips > 1 else (
            f"first {self.frames} frames" if self.frames else "whole videos")
        head = f"{len(self.predictions)} videos, {self.mode} mode ({what})"
        if m is None:
            return f"{head}: no labels, so no accuracy (predictions only)"
        return (f"{head}: top-1 {m.top1:.2%}  top-5 {m.top5:.2%}  mean class accuracy "
                f"{m.mean_class_accuracy:.2%}")


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def batch_logits(model: nn.Module, batches: Iterable[tuple[torch.Tensor, Any]],
                 device: torch.device, amp_dtype: torch.dtype | None = None,
                 channels_last: bool = False
                 ) -> Iterator[tuple[torch.Tensor, int, Any]]:
    """``(logits, clips per video, labels)`` of each batch: the one forward pass of every
    evaluation (the trainer's test pass and :func:`collect_scores`). A 6D batch holds several
    clips per video, flattened into the batch."""
    fmt = torch.channels_last_3d if channels_last else torch.preserve_format
    for clips, target in batches:
        per_video = clips.shape[1] if clips.ndim == 6 else 1
        if clips.ndim == 6:
            clips = clips.flatten(0, 1)
        clips = clips.to(device, non_blocking=True, memory_format=fmt)
        with autocast(device, amp_dtype):
            logits = model(clips).float()
        yield logits, per_video, target


@torch.no_grad()
def test_metrics(model: nn.Module, loader: Iterable[tuple[torch.Tensor, Any]], *,
                 device: torch.device, amp_dtype: torch.dtype | None = None,
                 channels_last: bool = False, progress: bool = False) -> dict[str, float]:
    """Loss, top-1 and top-5 over ``loader`` (one clip per item), summed over every process
    under DDP; ``model`` must be in eval mode."""
    sums = torch.zeros(4, dtype=torch.float64, device=device)
    bar = tqdm(loader, desc="test", unit="batch", leave=False, dynamic_ncols=True,
               disable=not progress)
    for logits, _, labels in batch_logits(model, bar, device, amp_dtype, channels_last):
        labels = labels.to(device, non_blocking=True)
        top1, top5 = topk_correct(logits, labels, (1, 5))
        sums += torch.stack([F.cross_entropy(logits, labels, reduction="sum").double(),
                             *torch.tensor([top1, top5, labels.numel()], dtype=torch.float64,
                                           device=device)])
    loss, top1, top5, n = D.all_reduce_sum(sums).tolist()
    if n == 0:
        raise ValueError("the test set is empty")
    return {"loss": loss / n, "top1": top1 / n, "top5": top5 / n}


@torch.no_grad()
def collect_scores(model: nn.Module, dataset: Dataset, *, device: torch.device | str = "cpu",
                   batch_size: int = 8, workers: int = 0, amp_dtype: torch.dtype | None = None,
                   channels_last: bool = False, progress: bool = True, desc: str = "evaluate"
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax scores ``N×C`` (averaged over a video's clips) and labels ``N``, in dataset order.

    Variable-length items (whole videos) need ``batch_size=1``.
    """
    device = torch.device(device)
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        pin_memory=device.type == "cuda",
                        generator=torch.Generator().manual_seed(0))
    bar = tqdm(loader, desc=desc, unit="batch", disable=not progress, dynamic_ncols=True,
               leave=False)
    scores, labels = [], []
    for logits, per_video, target in batch_logits(model, bar, device, amp_dtype, channels_last):
        probs = logits.softmax(dim=1).view(len(target), per_video, -1).mean(dim=1)
        scores.append(probs.cpu())
        labels.append(torch.as_tensor(target))
    if not scores:
        raise ValueError("the evaluation set is empty")
    return torch.cat(scores), torch.cat(labels).long()


def evaluate_model(model: nn.Module, dataset: Dataset, classes: list[str], *, mode: str = "clip",
                   frames: int | None = 16, clips: int = 1, source: dict[str, Any] | None = None,
                   **options: Any) -> EvalReport:
    """Score ``dataset`` with ``model``; ``options`` go to :func:`collect_scores`. Videos that
    failed to decode (a :class:`VideoDataset` with ``skip_bad``) are left out."""
    data_classes = getattr(dataset, "classes", None)
    if data_classes and list(data_classes) != list(classes):  # unlabelled sets may have none
        raise ValueError(f"the model's {len(classes)} classes differ from the dataset's "
                         f"{len(data_classes)} (names or order)")
    start = time.monotonic()
    scores, labels = collect_scores(model, dataset, **options)
    if scores.shape[1] != len(classes):
        raise ValueError(f"the model scores {scores.shape[1]} classes, expected {len(classes)}")
    if isinstance(dataset, VideoDataset):
        records = [dataset.video_record(i) for i in range(len(dataset))]
        keep = torch.ones(len(dataset), dtype=torch.bool)
        keep[dataset.skipped_indices()] = False  # their rows hold another video's clip
        scores, labels = scores[keep], labels[keep]
        records = [r for r, k in zip(records, keep.tolist(), strict=True) if k]
    else:
        records = [{"index": str(i)} for i in range(len(labels))]
    unlabelled = labels == UNLABELLED
    if unlabelled.any() and not unlabelled.all():
        raise ValueError("some videos have labels and others not")
    metrics = None if unlabelled.any() else ClassificationMetrics.from_scores(scores, labels)
    predictions = top_predictions(scores, labels, classes, records)
    return EvalReport(metrics, list(classes), mode, frames, clips, time.monotonic() - start,
                      dict(source or {}), predictions)


def top_predictions(scores: torch.Tensor, labels: torch.Tensor, classes: list[str],
                    records: list[dict[str, str]], k: int = TOP_PREDICTIONS
                    ) -> list[dict[str, Any]]:
    """One row per video: ``records``' columns, ``label`` (empty when unknown) and ``top1``,
    ``score1`` ... ``topK``, ``scoreK``."""
    values, indices = scores.topk(min(k, scores.shape[1]), dim=1)
    rows = []
    for record, label, top, score in zip(records, labels.tolist(), indices.tolist(),
                                         values.tolist(), strict=True):
        row: dict[str, Any] = {**record, "label": "" if label == UNLABELLED else classes[label]}
        for rank, (i, p) in enumerate(zip(top, score, strict=True), 1):
            row[f"top{rank}"], row[f"score{rank}"] = classes[i], round(p, 6)
        rows.append(row)
    return rows

"""Evaluation of a trained model on a test set: scores, metrics and the JSON report.

A dataset item is ``(clip, label)`` with ``clip`` ``3×T×H×W`` (one clip) or ``K×3×T×H×W``
(several clips of one video): the softmax scores of a video's clips are averaged.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .metrics import ClassificationMetrics


@dataclass
class EvalReport:
    """Metrics of one evaluation and what was evaluated."""

    metrics: ClassificationMetrics
    classes: list[str]
    mode: str  # "clip" or "video"
    frames: int | None  # frames per clip (None: whole videos)
    clips: int  # clips averaged per video
    seconds: float
    source: dict[str, Any] = field(default_factory=dict)  # checkpoint, dataset, root, split

    def to_dict(self) -> dict[str, Any]:
        m = self.metrics
        return {
            **self.source, "mode": self.mode, "frames": self.frames, "clips": self.clips,
            "num_samples": m.num_samples, "top1": m.top1, "top5": m.top5,
            "mean_class_accuracy": _finite(m.mean_class_accuracy),
            "per_class_accuracy": {c: _finite(a) for c, a in zip(self.classes,
                                                                 m.per_class_accuracy,
                                                                 strict=True)},
            "classes": self.classes, "confusion": m.confusion, "seconds": round(self.seconds, 2),
        }

    def save_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    def summary(self) -> str:
        m = self.metrics
        what = f"{self.clips} clips of {self.frames} frames" if self.clips > 1 else (
            f"first {self.frames} frames" if self.frames else "whole videos")
        return (f"{m.num_samples} videos, {self.mode} mode ({what}): top-1 {m.top1:.2%}  "
                f"top-5 {m.top5:.2%}  mean class accuracy {m.mean_class_accuracy:.2%}")


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _autocast(device: torch.device, amp_dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None)


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
    scores, labels = [], []
    fmt = torch.channels_last_3d if channels_last else torch.preserve_format
    for clips, target in tqdm(loader, desc=desc, unit="batch", disable=not progress,
                              dynamic_ncols=True, leave=False):
        per_video = clips.shape[1] if clips.ndim == 6 else 1
        if clips.ndim == 6:
            clips = clips.flatten(0, 1)
        clips = clips.to(device, non_blocking=True, memory_format=fmt)
        with _autocast(device, amp_dtype):
            logits = model(clips).float()
        probs = logits.softmax(dim=1).view(len(target), per_video, -1).mean(dim=1)
        scores.append(probs.cpu())
        labels.append(torch.as_tensor(target))
    if not scores:
        raise ValueError("the evaluation set is empty")
    return torch.cat(scores), torch.cat(labels).long()


def evaluate_model(model: nn.Module, dataset: Dataset, classes: list[str], *, mode: str = "clip",
                   frames: int | None = 16, clips: int = 1, source: dict[str, Any] | None = None,
                   **options: Any) -> EvalReport:
    """Score ``dataset`` with ``model``; ``options`` go to :func:`collect_scores`."""
    data_classes = getattr(dataset, "classes", None)
    if data_classes is not None and list(data_classes) != list(classes):
        raise ValueError(f"the model's {len(classes)} classes differ from the dataset's "
                         f"{len(data_classes)} (names or order)")
    start = time.monotonic()
    scores, labels = collect_scores(model, dataset, **options)
    if scores.shape[1] != len(classes):
        raise ValueError(f"the model scores {scores.shape[1]} classes, expected {len(classes)}")
    metrics = ClassificationMetrics.from_scores(scores, labels)
    return EvalReport(metrics, list(classes), mode, frames, clips, time.monotonic() - start,
                      dict(source or {}))

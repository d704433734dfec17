"""Two-stream late fusion: an RGB run's and a flow run's softmax scores on the same videos,
weighted and summed (MMAction2's ``report_accuracy.py --preds rgb flow --coefficients 1 1.5``).

Both streams are scored with the published test protocol (the first frames, centre crop) on
their training configuration's test split. Weights are given, or chosen (``auto``) on the
*training* split's videos, never on the test split: the flow weight (the RGB one is 1) of
:data:`FLOW_WEIGHTS` with the best training top-1, ties broken by the lower training loss of the
fused scores.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..data.datasets import UNLABELLED
from .build_data import eval_dataset, training_videos
from .checkpoint import load_model
from .distributed import resolve_device
from .evaluate import EvalReport, collect_scores, top_predictions
from .metrics import ClassificationMetrics
from .precision import resolve_amp
from .train_config import TrainConfig, config_from_dict

STREAMS = ("rgb", "flow", "fused")
#: the flow weights ``auto`` tries (RGB weight 1), then flow alone
FLOW_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0)


@dataclass
class StreamScores:
    """One stream's softmax scores ``N×C`` on a video set, its labels and video names."""

    checkpoint: str
    modality: str
    classes: list[str]
    scores: torch.Tensor
    labels: torch.Tensor
    videos: list[dict[str, str]]


def stream_scores(checkpoint: str | Path, part: str = "test", *, batch_size: int = 8,
                  workers: int = 2, device: str = "auto", amp: str = "auto",
                  progress: bool = True) -> StreamScores:
    """Scores of a checkpoint on its training configuration's ``test`` split or ``train`` split
    (read as the test protocol reads videos); videos that failed to decode are left out."""
    model, meta = load_model(checkpoint)
    cfg = config_from_dict(meta.config) if meta.config else TrainConfig()
    clip = meta.clip
    if part == "test":
        dataset = eval_dataset(cfg.data, mode="clip", frames=clip.frames, clip=clip)
        if dataset is None:
            raise ValueError(f"{checkpoint}: its folder/list dataset has no test videos "
                             "(data.test_root)")
    else:
        dataset = training_videos(cfg.data, clip)
    dev = resolve_device(device)
    scores, labels = collect_scores(model.to(dev), dataset, device=dev, batch_size=batch_size,
                                    workers=workers, amp_dtype=resolve_amp(amp, dev),
                                    progress=progress, desc=f"{clip.modality} {part}")
    keep = torch.ones(len(dataset), dtype=torch.bool)
    keep[dataset.skipped_indices()] = False
    videos = [dataset.video_record(i) for i in range(len(dataset)) if keep[i]]
    return StreamScores(str(checkpoint), clip.modality, list(meta.classes), scores[keep],
                        labels[keep], videos)


def check_pair(rgb: StreamScores, flow: StreamScores) -> None:
    """Both streams scored the same videos, in the same order, with the same classes."""
    if rgb.modality != "rgb" or flow.modality != "flow":
        raise ValueError(f"fusion takes an RGB run then a flow run; got {rgb.modality} "
                         f"({rgb.checkpoint}) and {flow.modality} ({flow.checkpoint})")
    if rgb.classes != flow.classes:
        raise ValueError(f"{rgb.checkpoint} and {flow.checkpoint} have other classes")
    if rgb.videos != flow.videos or not torch.equal(rgb.labels, flow.labels):
        raise ValueError(f"{rgb.checkpoint} and {flow.checkpoint} scored other videos "
                         f"({len(rgb.videos)} and {len(flow.videos)}): train both on the same "
                         "dataset and split")


def fuse(rgb: torch.Tensor, flow: torch.Tensor, weights: tuple[float, float]) -> torch.Tensor:
    """``w_rgb · rgb + w_flow · flow``, normalised to sum to 1 per video."""
    check_weights(weights)
    return (weights[0] * rgb + weights[1] * flow) / (weights[0] + weights[1])


def check_weights(weights: tuple[float, float]) -> None:
    if len(weights) != 2 or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(f"fusion weights are two values (rgb, flow) >= 0, not both 0; got "
                         f"{tuple(weights)}")


def choose_weights(rgb: StreamScores, flow: StreamScores) -> tuple[float, float]:
    """The weights of :data:`FLOW_WEIGHTS` (and flow alone) with the best top-1 on these
    (training-split) scores, ties broken by the lower loss."""
    check_pair(rgb, flow)
    best, key = (1.0, 0.0), None
    for weights in [(1.0, w) for w in FLOW_WEIGHTS] + [(0.0, 1.0)]:
        fused = fuse(rgb.scores, flow.scores, weights)
        top1 = float((fused.argmax(1) == rgb.labels).float().mean())
        loss = float(-fused.gather(1, rgb.labels[:, None]).clamp_min(1e-12).log().mean())
        if key is None or (top1, -loss) > key:
            best, key = weights, (top1, -loss)
    return best


@dataclass
class FusionReport:
    """The three rows (rgb, flow, fused) of a two-stream evaluation."""

    weights: tuple[float, float]
    weights_from: str  # "given" or "training split"
    classes: list[str]
    metrics: dict[str, ClassificationMetrics]
    source: dict[str, Any] = field(default_factory=dict)
    predictions: list[dict[str, Any]] = field(default_factory=list)  # fused, one per video

    def rows(self) -> list[dict[str, Any]]:
        return [{"stream": s, "top1": m.top1, "top5": m.top5,
                 "mean_class_accuracy": m.mean_class_accuracy, "num_samples": m.num_samples}
                for s, m in self.metrics.items()]

    def table(self) -> str:
        """Markdown: one row per stream."""
        w = "{:g} : {:g}".format(*self.weights)
        lines = ["| stream | top-1 (%) | top-5 (%) | mean class acc. (%) | test videos |",
                 "|---|---|---|---|---|"]
        for r in self.rows():
            name = f"fused (rgb : flow = {w}, {self.weights_from})" if r["stream"] == "fused" \
                else r["stream"]
            lines.append(f"| {name} | {100 * r['top1']:.1f} | {100 * r['top5']:.1f} | "
                         f"{100 * r['mean_class_accuracy']:.1f} | {r['num_samples']} |")
        return "\n".join(lines) + "\n"

    def save(self, out: str | Path) -> Path:
        """``fusion.json``, ``fusion.md`` and the fused ``predictions.csv`` in ``out``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        data = {**self.source, "weights": list(self.weights), "weights_from": self.weights_from,
                "rows": self.rows(), "classes": self.classes}
        (out / "fusion.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        (out / "fusion.md").write_text(self.table(), encoding="utf-8")
        fused = EvalReport(self.metrics["fused"], self.classes, "clip", None, 1, 0.0,
                           predictions=self.predictions)
        fused.save_predictions(out / "predictions.csv")
        return out / "fusion.json"


def fuse_runs(rgb_checkpoint: str | Path, flow_checkpoint: str | Path,
              weights: tuple[float, float] | None = None, **options: Any) -> FusionReport:
    """Score both checkpoints on their test split and fuse them with ``weights`` (``None``:
    chosen on the training split, :func:`choose_weights`); ``options`` go to
    :func:`stream_scores`."""
    if weights is None:
        weights = choose_weights(stream_scores(rgb_checkpoint, "train", **options),
                                 stream_scores(flow_checkpoint, "train", **options))
        weights_from = "training split"
    else:
        check_weights(weights)
        weights_from = "given"
    rgb = stream_scores(rgb_checkpoint, "test", **options)
    flow = stream_scores(flow_checkpoint, "test", **options)
    check_pair(rgb, flow)
    if (rgb.labels == UNLABELLED).any():
        raise ValueError(f"{rgb_checkpoint}: its test videos have no labels: fusion reports "
                         "accuracies, it needs labelled videos")
    fused = fuse(rgb.scores, flow.scores, weights)
    metrics = {s: ClassificationMetrics.from_scores(p, rgb.labels)
               for s, p in zip(STREAMS, (rgb.scores, flow.scores, fused), strict=True)}
    source = {"rgb_checkpoint": str(rgb_checkpoint), "flow_checkpoint": str(flow_checkpoint)}
    return FusionReport(weights, weights_from, rgb.classes, metrics, source,
                        top_predictions(fused, rgb.labels, rgb.classes, rgb.videos))

"""PNG plots: confusion matrix, training curves from ``metrics.csv``, accuracy versus length."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .runlog import read_metrics_csv  # noqa: E402


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_confusion(confusion: Sequence[Sequence[int]], classes: Sequence[str], path: str | Path,
                   title: str = "") -> Path:
    """Row-normalised confusion matrix (true class down, predicted across)."""
    n = len(classes)
    rows = [[v / max(sum(row), 1) for v in row] for row in confusion]
    size = min(max(4.0, 0.28 * n + 2.5), 30.0)
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(rows, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    ticks = range(n)
    fontsize = 8 if n <= 30 else 5
    ax.set_xticks(ticks, classes, rotation=90, fontsize=fontsize)
    ax.set_yticks(ticks, classes, fontsize=fontsize)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if n <= 20:
        for i, row in enumerate(confusion):
            for j, count in enumerate(row):
                if count:
                    ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                            color="white" if rows[i][j] > 0.5 else "black")
    ax.set_title(title or "confusion matrix")
    return _save(fig, path)


def plot_training_curves(runs: Sequence[str | Path], path: str | Path,
                         labels: Sequence[str] | None = None) -> Path:
    """Loss and top-1 (train and test) per epoch of one or more run folders (or metrics.csv)."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for i, run in enumerate(runs):
        csv = Path(run) / "metrics.csv" if Path(run).is_dir() else Path(run)
        rows = read_metrics_csv(csv)
        label = labels[i] if labels else (csv.parent.name if len(runs) > 1 else "")
        prefix = f"{label} " if label else ""
        color = f"C{i}"
        epochs = [r["epoch"] for r in rows]
        ax_loss.plot(epochs, [r["train_loss"] for r in rows], color=color, ls="--",
                     label=f"{prefix}train")
        ax_acc.plot(epochs, [100 * r["train_top1"] for r in rows], color=color, ls="--",
                    label=f"{prefix}train")
        test = [r for r in rows if r.get("test_top1") is not None]
        if test:
            ax_loss.plot([r["epoch"] for r in test], [r["test_loss"] for r in test],
                         color=color, marker="o", ms=3, label=f"{prefix}test")
            ax_acc.plot([r["epoch"] for r in test], [100 * r["test_top1"] for r in test],
                        color=color, marker="o", ms=3, label=f"{prefix}test")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="top-1 accuracy (%)", title="top-1 accuracy",
               ylim=(0, 100))
    ax_loss.set_yscale("log")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_accuracy_vs_length(curves: dict[str, list[tuple[int, float]]], path: str | Path,
                            title: str = "") -> Path:
    """Video-level top-1 against the number of frames, one line per model."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in curves.items():
        points = sorted(points)
        ax.plot([p[0] for p in points], [100 * p[1] for p in points], marker="o", label=name)
    ax.set_xscale("log", base=2)
    lengths = sorted({p[0] for points in curves.values() for p in points})
    ax.set_xticks(lengths, [str(n) for n in lengths])
    ax.set(xlabel="frames per video", ylabel="video top-1 accuracy (%)",
           title=title or "accuracy versus clip length")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_grouped_bars(groups: Sequence[str],
                      series: dict[str, tuple[Sequence[float], Sequence[float | None]]],
                      path: str | Path, ylabel: str, title: str = "") -> Path:
    """One cluster of bars per group: each series (name -> a mean and a standard deviation per
    group, ``None`` for no spread) is a bar in every cluster, its deviation an error bar."""
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(groups) * max(len(series), 1)), 4))
    width = 0.8 / max(len(series), 1)
    for i, (name, (means, stds)) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        errors = [s or 0.0 for s in stds]
        bars = ax.bar(xs, means, width, yerr=errors, capsize=4, label=name, color=f"C{i}")
        ax.bar_label(bars, [f"{m:.1f}" for m in means], label_type="center", color="white",
                     fontsize=9)
    ax.set_xticks(range(len(groups)), groups)
    ax.set(ylabel=ylabel, title=title)
    ax.set_ylim(0, max(100.0, ax.get_ylim()[1]))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=len(series))
    return _save(fig, path)

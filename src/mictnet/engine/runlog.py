"""A run folder's records: ``metrics.csv``, ``train.log`` and TensorBoard events."""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("mictnet.train")

# data_wait: the fraction of the epoch's training time spent waiting for the next batch
METRIC_COLUMNS = ("epoch", "step", "lr", "train_loss", "train_top1", "test_loss", "test_top1",
                  "test_top5", "epoch_seconds", "clips_per_s", "data_wait")


class RunLog:
    """Writes the run's records (only on the main process; elsewhere every call is a no-op).

    ``metrics.csv`` is rewritten whole from the history kept in the checkpoint, so after a
    resume it holds exactly one row per finished epoch. ``purge_step`` drops TensorBoard events
    past the resumed step.
    """

    def __init__(self, run_dir: Path, *, enabled: bool, tensorboard: bool,
                 purge_step: int | None = None) -> None:
        self.run_dir = run_dir
        self.enabled = enabled
        self.writer = None
        self.handler: logging.Handler | None = None
        if not enabled:
            return
        self.handler = logging.FileHandler(run_dir / "train.log", encoding="utf-8")
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(self.handler)
        if log.getEffectiveLevel() > logging.INFO:
            log.setLevel(logging.INFO)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=purge_step)

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self.writer is not None and math.isfinite(value):
            self.writer.add_scalar(tag, value, step)

    def epoch(self, record: dict[str, Any], history: list[dict[str, Any]]) -> None:
        """Record a finished epoch: TensorBoard points and the whole ``metrics.csv``."""
        if not self.enabled:
            return
        for key in ("train_loss", "train_top1", "test_loss", "test_top1", "test_top5"):
            if record.get(key) is not None:
                group, name = key.split("_", 1)
                self.scalar(f"{name}/{group}", record[key], record["step"])
        if self.writer is not None:
            self.writer.flush()
        write_metrics_csv(self.run_dir / "metrics.csv", history)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.handler is not None:
            log.removeHandler(self.handler)
            self.handler.close()


def format_seconds(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour."""
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def epoch_line(r: dict[str, Any], epochs: int) -> str:
    """The log line of a finished epoch (a ``metrics.csv`` record)."""
    line = (f"epoch {r['epoch']}/{epochs}  train loss "
            f"{r['train_loss']:.4f} top-1 {r['train_top1']:.1%}")
    if r["test_top1"] is not None:
        line += (f"  test loss {r['test_loss']:.4f} top-1 {r['test_top1']:.1%} "
                 f"top-5 {r['test_top5']:.1%}")
    return (line + f"  lr {r['lr']:.3g}  {r['clips_per_s']:.1f} clips/s  "
            f"{format_seconds(r['epoch_seconds'])}")


def summary_lines(result: Any, epochs: int, run_dir: Path, tensorboard: bool,
                  keep_resume: bool = False) -> list[str]:
    """The closing lines of a run (``result``: a :class:`~.train.TrainResult`); a finished
    one says what its checkpoints keep and what the folder costs on disk."""
    state = "stopped" if result.interrupted else "finished"
    lines = [f"{state} after {result.epochs_done}/{epochs} epochs (global step "
             f"{result.global_step}) in {format_seconds(result.seconds)}"]
    last = result.last
    if result.best_top1 is not None:
        lines.append(f"best test top-1 {100 * result.best_top1:.1f}% (epoch {result.best_epoch})")
    if last is not None and last.get("test_top1") is not None:
        lines.append(f"last epoch: test top-1 {100 * last['test_top1']:.1f}%, top-5 "
                     f"{100 * last['test_top5']:.1f}%")
    lines.append(f"run folder {run_dir}: config.yaml, last.pt"
                 f"{', best.pt' if (run_dir / 'best.pt').is_file() else ''}, metrics.csv, "
                 "train.log"
                 f"{', tensorboard/' if tensorboard else ''}")
    if result.interrupted:
        lines.append(f"continue with: mict train --resume {run_dir}")
    elif result.epochs_done >= epochs:
        lines.append(disk_line(run_dir, keep_resume))
    return lines


def disk_line(run_dir: Path, keep_resume: bool) -> str:
    """``disk: last.pt 61.9 MB (...), best.pt 61.9 MB; the folder 124.1 MB``."""
    def mb(size: int) -> str:
        return f"{size / 1e6:.1f} MB"

    kept = ("final weights with the resume state (--keep-resume)" if keep_resume else
            "final weights, metrics and history; the optimiser state is dropped, --keep-resume "
            "keeps it")
    parts = [f"{name} {mb((run_dir / name).stat().st_size)}"
             + (f" ({kept})" if name == "last.pt" else "")
             for name in ("last.pt", "best.pt") if (run_dir / name).is_file()]
    folder = sum(p.stat().st_size for p in run_dir.rglob("*") if p.is_file())
    return f"disk: {', '.join(parts)}; the folder {mb(folder)}"


def write_metrics_csv(path: Path, history: list[dict[str, Any]]) -> None:
    """One row per epoch (empty cells where a value was not measured), replaced atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in history:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in METRIC_COLUMNS})
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(buf.getvalue(), encoding="utf-8")
    os.replace(tmp, path)


def read_metrics_csv(path: str | Path) -> list[dict[str, float | None]]:
    """The rows of a ``metrics.csv`` as numbers (``None`` for empty cells)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics file")
    rows = []
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = {"epoch", "train_loss"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: not a mictnet metrics.csv (no {', '.join(missing)} column)")
        for line, row in enumerate(reader, start=2):
            try:
                rows.append({k: (float(v) if v not in ("", None) else None)
                             for k, v in row.items()})
            except ValueError as err:
                raise ValueError(f"{path} line {line}: {err}") from None
    return rows

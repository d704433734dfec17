"""Multi-run experiments' shared steps: train a configuration once (reused, resumed or refused),
evaluate its weights, and summarise runs (mean ± std, the cross-validation table).

``mict crossval``, ``mict sweep`` and ``mict transfer-study`` are built on these.
"""

from __future__ import annotations

import logging
import statistics
from pathlib import Path
from typing import Any

from .distributed import barrier, env_dist_info
from .evaluate import EvalReport
from .run import claim_run_dir, evaluate_checkpoint, run_status, save_report, train_run
from .train_config import TrainConfig

log = logging.getLogger("mictnet")


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and standard deviation (``None`` for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def percent_pm(values: list[float]) -> str:
    """``"25.0 ± 1.2"`` in percent; a single value has no ±."""
    mean, std = mean_std([100 * v for v in values])
    return f"{mean:.1f}" if std is None else f"{mean:.1f} ± {std:.1f}"


def ensure_trained(cfg: TrainConfig, run_dir: Path) -> None:
    """Train ``cfg`` in ``run_dir``: a finished run of the same configuration is reused, an
    unfinished one resumed, a run of another configuration is an error naming the keys."""
    status = run_status(run_dir, cfg.schedule.epochs, cfg)
    if status == "finished":
        log.info("%s: already trained (same configuration)", run_dir)
        return
    if status == "new" and env_dist_info().is_main:
        claim_run_dir(run_dir, overwrite=True)  # a killed attempt's files kept aside
    train_run(cfg, run_dir, resume=status == "unfinished")


def train_and_evaluate(cfg: TrainConfig, run_dir: Path, weights: str = "final"
                       ) -> EvalReport | None:
    """:func:`ensure_trained`, then the test report of its ``final`` (``last.pt``) or ``best``
    weights, saved in ``run_dir/eval-clip``; ``None`` in the other processes of a distributed
    run."""
    ensure_trained(cfg, run_dir)
    if not env_dist_info().is_main:
        barrier()  # wait for the main process's evaluation
        return None
    path = run_dir / ("last.pt" if weights == "final" else "best.pt")
    if not path.is_file():
        raise RuntimeError(f"{path}: not written (no test evaluation during training?)")
    report = evaluate_checkpoint(path, mode="clip", workers=cfg.data.workers,
                                 device=cfg.runtime.device, amp=cfg.runtime.amp,
                                 progress=cfg.runtime.progress)
    save_report(report, run_dir / "eval-clip")
    barrier()
    return report


def crossval_table(name: str, rows: list[dict[str, Any]], cost: dict[str, float],
                   device: str) -> str:
    """The Markdown table of a cross-validation."""
    lines = [
        f"| model | splits | top-1 (%) | top-5 (%) | params (M) | memory/clip (MB) | "
        f"frames/s ({device}) |",
        "|---|---|---|---|---|---|---|",
        f"| {name} | {len(rows)} | {percent_pm([r['top1'] for r in rows])} | "
        f"{percent_pm([r['top5'] for r in rows])} | "
        f"{cost['params_m']:.1f} | {cost['memory_mb_per_clip']:.1f} | "
        f"{cost['frames_per_s']:.0f} |",
        "",
        "| split | top-1 (%) | top-5 (%) | mean class acc. (%) | test videos |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {r['split']} | {100 * r['top1']:.1f} | {100 * r['top5']:.1f} | "
              f"{100 * r['mean_class_accuracy']:.1f} | {r['num_samples']} |" for r in rows]
    return "\n".join(lines) + "\n"

"""Multi-run experiments' shared steps: train a configuration once (reused, resumed or refused),
evaluate its weights, and summarise runs (mean ± std, the cross-validation table).

``mict crossval``, ``mict sweep`` and ``mict transfer-study`` are built on these.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import replace
from pathlib import Path
from typing import Any

from .distributed import barrier, env_dist_info
from .evaluate import EvalReport
from .fusion import STREAMS, FusionReport, fuse_runs
from .resolve import derived
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


def train_and_fuse(cfg: TrainConfig, folder: Path, weights: str = "final",
                   fusion: tuple[float, float] | None = None) -> FusionReport | None:
    """Train an RGB run (``folder/rgb``) and a flow run (``folder/flow``) of ``cfg`` (its
    ``data.cache`` must hold the flow), evaluate both and fuse their scores (``fusion``:
    weights, ``None``: chosen on the training split), saved in ``folder/eval-fused``; ``None``
    in the other processes of a distributed run."""
    if not cfg.data.cache:
        raise ValueError("two streams need the optical flow: mict prepare --flow dis --out DIR, "
                         "then --cache DIR")
    paths = []
    for modality in ("rgb", "flow"):
        stream = replace(cfg, data=replace(cfg.data, modality=modality))
        train_and_evaluate(derived(stream), folder / modality, weights)
        paths.append(folder / modality / ("last.pt" if weights == "final" else "best.pt"))
    if not env_dist_info().is_main:
        return None
    report = fuse_runs(*paths, weights=fusion, workers=cfg.data.workers,
                       device=cfg.runtime.device, amp=cfg.runtime.amp,
                       progress=cfg.runtime.progress)
    report.save(folder / "eval-fused")
    return report


def fused_crossval_table(name: str, reports: dict[int, FusionReport]) -> str:
    """The Markdown table of a two-stream cross-validation: rgb, flow and fused rows (mean ±
    std over splits), then every split's."""
    lines = [f"| {name} | splits | top-1 (%) | top-5 (%) | mean class acc. (%) |",
             "|---|---|---|---|---|"]
    for stream in STREAMS:
        got = [r.metrics[stream] for r in reports.values()]
        lines.append(f"| {stream} | {len(got)} | {percent_pm([m.top1 for m in got])} | "
                     f"{percent_pm([m.top5 for m in got])} | "
                     f"{percent_pm([m.mean_class_accuracy for m in got])} |")
    lines += ["", "| split | weights rgb : flow | rgb top-1 (%) | flow top-1 (%) | "
              "fused top-1 (%) | test videos |", "|---|---|---|---|---|---|"]
    for split, r in reports.items():
        m = r.metrics
        lines.append(f"| {split} | {r.weights[0]:g} : {r.weights[1]:g} ({r.weights_from}) | "
                     + " | ".join(f"{100 * m[s].top1:.1f}" for s in STREAMS)
                     + f" | {m['fused'].num_samples} |")
    return "\n".join(lines) + "\n"


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

"""Multi-run experiments: train a configuration once (reused, resumed or refused), evaluate its
weights, summarise runs (mean ± std, the cross-validation table); cross-validation over the
official splits (:func:`crossval`) and the accuracy-versus-length sweep (:func:`length_sweep`).

``mict crossval``, ``mict sweep`` and ``mict transfer-study`` are built on these.
"""

from __future__ import annotations

import csv
import json
import logging
import statistics
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .checkpoint import load_checkpoint
from .distributed import barrier, env_dist_info, resolve_device
from .evaluate import EvalReport
from .fusion import STREAMS, FusionReport, fuse_runs
from .measure import model_costs
from .resolve import derived
from .run import claim_run_dir, evaluate_checkpoint, run_status, save_report, train_run
from .train_config import EvalDataConfig, InferenceConfig, TrainConfig

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
    report = evaluate_checkpoint(path, run=cfg.inference(),
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


def crossval(base: TrainConfig, out: Path, folds: Sequence[int], weights: str = "final",
             fusion: tuple[float, float] | None = None) -> str | None:
    """Train and evaluate ``base`` on each official split of ``folds`` (``out/split<k>``, its
    ``weights``: final or best), then write ``crossval.md`` and ``crossval.json`` to ``out`` with
    the mean ± std, parameters and frames/s; returns the table (``None`` in a process that is not
    the main one). ``data.modality: both``: an RGB and a flow run per split, fused."""
    if base.data.modality == "both":
        return _crossval_two_stream(base, out, folds, weights, fusion)
    rows = []
    classes: list[str] = []
    for split in folds:
        run_dir = out / f"split{split}"
        report = train_and_evaluate(replace(base, data=replace(base.data, split=split)),
                                    run_dir, weights)
        if report is None:
            continue  # not the main process
        m = report.metrics
        rows.append({"split": split, "top1": m.top1, "top5": m.top5,
                     "mean_class_accuracy": m.mean_class_accuracy, "num_samples": m.num_samples,
                     "run": str(run_dir)})
        classes = report.classes
        log.info("split %d: %s", split, report.summary())
    if not env_dist_info().is_main:
        return None
    device = resolve_device(base.runtime.device)
    cost = model_costs(base, len(classes), device)
    name = base.model.name + (f" (ts {base.model.temporal_stride})"
                              if base.model.temporal_stride else "")
    table = crossval_table(name, rows, cost, device.type)
    top1, top5 = (mean_std([r[k] for r in rows]) for k in ("top1", "top5"))
    summary = {"preset": base.preset, "model": base.model.name, "weights": weights,
               "device": str(device), "splits": rows, "top1_mean": top1[0], "top1_std": top1[1],
               "top5_mean": top5[0], "top5_std": top5[1], **cost, "config": base.to_dict()}
    return _write_crossval(out, table, summary)


def _crossval_two_stream(base: TrainConfig, out: Path, folds: Sequence[int], weights: str,
                         fusion: tuple[float, float] | None) -> str | None:
    """Per split an RGB run and a flow run, fused; the three-row table."""
    reports = {}
    for split in folds:
        report = train_and_fuse(replace(base, data=replace(base.data, split=split)),
                                out / f"split{split}", weights, fusion)
        if report is not None:
            reports[split] = report
            log.info("split %d: top-1 rgb %.1f%%, flow %.1f%%, fused %.1f%%", split,
                     *(100 * report.metrics[s].top1 for s in STREAMS))
    if not env_dist_info().is_main:
        return None
    summary = {"preset": base.preset, "model": base.model.name, "modality": "both",
               "weights": weights,
               "splits": [{"split": k, "weights": list(r.weights), "weights_from": r.weights_from,
                           "rows": r.rows()} for k, r in reports.items()],
               "config": base.to_dict()}
    return _write_crossval(out, fused_crossval_table(base.model.name, reports), summary)


def _write_crossval(out: Path, table: str, summary: dict[str, Any]) -> str:
    (out / "crossval.md").write_text(table, encoding="utf-8")
    (out / "crossval.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return table


def length_sweep(checkpoints: Sequence[str | Path], labels: Sequence[str],
                 lengths: Sequence[int], out: Path, target: EvalDataConfig,
                 run: InferenceConfig,
                 on_row: Callable[[dict[str, Any]], None] | None = None) -> tuple[Path, Path]:
    """Video-level accuracy of each checkpoint at each number of frames read from the start
    (0: all) on ``target``'s labelled test videos; ``on_row`` sees each row as it is measured.
    Writes ``sweep.csv`` and ``sweep.png`` to ``out`` and returns their paths."""
    from .plots import plot_accuracy_vs_length  # matplotlib only when a figure is drawn

    if len(labels) != len(checkpoints):
        raise ValueError(f"{len(labels)} --labels for {len(checkpoints)} checkpoints")
    out.mkdir(parents=True, exist_ok=True)
    rows, curves = [], {}
    for ckpt, label in zip(checkpoints, labels, strict=True):
        for length in lengths:
            report = evaluate_checkpoint(ckpt, replace(target, mode="video", frames=length), run)
            m = report.metrics
            if m is None:
                raise ValueError(f"the {report.source['split']} videos have no labels: a sweep "
                                 "needs labelled ones")
            rows.append({"label": label, "checkpoint": str(ckpt), "frames": length,
                         "videos": m.num_samples, "top1": round(m.top1, 6),
                         "top5": round(m.top5, 6),
                         "mean_class_accuracy": round(m.mean_class_accuracy, 6)})
            curves.setdefault(label, []).append((length, m.top1))
            if on_row is not None:
                on_row(rows[-1])
    csv_path = out / "sweep.csv"
    if csv_path.exists():
        log.info("replacing the sweep in %s", out)
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    png = plot_accuracy_vs_length(curves, out / "sweep.png",
                                  "video-level top-1 versus the number of frames")
    return csv_path, png


def checkpoint_labels(paths: Sequence[str | Path]) -> list[str]:
    """Legend names: model and run folder, plus the file name where that is ambiguous."""
    labels = []
    for path in paths:
        p = Path(path)
        try:
            name = load_checkpoint(p)["model"]["name"]
        except (FileNotFoundError, ValueError):
            name = p.stem
        folder = p if p.is_dir() else p.parent
        labels.append(f"{name} ({folder.name})")
    return [f"{label[:-1]}/{Path(path).name})" if labels.count(label) > 1 else label
            for label, path in zip(labels, paths, strict=True)]

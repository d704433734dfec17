"""``mict train``, ``mict evaluate``, ``mict crossval``, ``mict sweep`` and ``mict plot``."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ..data.synthetic import read_metadata
from ..engine import costs
from ..engine.checkpoint import load_checkpoint, load_model
from ..engine.config import (
    TrainConfig,
    config_from_dict,
    list_presets,
    load_config,
    merge_dicts,
    parse_assignment,
    preset,
)
from ..engine.datasets import EVAL_MODES, eval_dataset, test_dataset, train_dataset
from ..engine.distributed import barrier, cleanup_distributed, env_dist_info
from ..engine.evaluate import EvalReport, evaluate_model
from ..engine.plots import plot_accuracy_vs_length, plot_confusion, plot_training_curves
from ..engine.precision import resolve_amp
from ..engine.train import Trainer, TrainResult, resolve_device
from ..models import build_model

log = logging.getLogger("mictnet")

# command-line flag (argparse dest) -> (config section, key)
FLAG_FIELDS: dict[str, tuple[str, str]] = {
    "model": ("model", "name"), "pretrained": ("model", "pretrained"),
    "dropout": ("model", "dropout"), "temporal_stride": ("model", "temporal_stride"),
    "dataset": ("data", "dataset"), "root": ("data", "root"),
    "test_root": ("data", "test_root"), "split": ("data", "split"),
    "splits": ("data", "splits_dir"), "cache": ("data", "cache"), "frames": ("data", "frames"),
    "crop_size": ("data", "crop_size"), "workers": ("data", "workers"),
    "lr": ("optim", "lr"), "momentum": ("optim", "momentum"),
    "weight_decay": ("optim", "weight_decay"), "batch_size": ("optim", "batch_size"),
    "micro_batch_size": ("optim", "micro_batch_size"), "epochs": ("schedule", "epochs"),
    "seed": ("runtime", "seed"), "device": ("runtime", "device"), "amp": ("runtime", "amp"),
    "deterministic": ("runtime", "deterministic"), "progress": ("runtime", "progress"),
}
PATH_FLAGS = ("root", "test_root", "splits", "cache")
RESUME_FLAGS = ("workers", "device", "progress")  # may change when resuming; nothing else


# ----------------------------------------------------------------------------- configuration

def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """Defaults, then ``--preset``, ``--config``, ``--set`` and the explicit flags."""
    cfg = preset(args.preset) if args.preset else TrainConfig()
    if args.config:
        cfg = load_config(args.config, cfg)
    for assignment in args.set or ():
        cfg = config_from_dict(parse_assignment(assignment), cfg, f"--set {assignment}")
    overrides: dict[str, Any] = {}
    for dest, (section, key) in FLAG_FIELDS.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        if dest in PATH_FLAGS:
            value = str(Path(value).resolve())
        elif dest == "pretrained":
            value = None if value.lower() == "none" else (
                value if value == "imagenet" else str(Path(value).resolve()))
        overrides = merge_dicts(overrides, {section: {key: value}})
    cfg = config_from_dict(overrides, cfg, "command line")
    return with_synthetic_flip(cfg)


def with_synthetic_flip(cfg: TrainConfig) -> TrainConfig:
    """On a synthetic dataset, mirror only the classes its ``synth.json`` calls flip-safe."""
    if cfg.data.flip is not True or not cfg.data.root:
        return cfg
    meta = read_metadata(Path(cfg.data.root).parent)
    if meta is None or "flip_safe" not in meta:
        return cfg
    return replace(cfg, data=replace(cfg.data, flip=list(meta["flip_safe"])))


def default_run_dir(cfg: TrainConfig) -> Path:
    name = cfg.preset or cfg.model.name
    return Path("runs") / f"{name}-{cfg.data.dataset}-split{cfg.data.split}-" \
                          f"{time.strftime('%Y%m%d-%H%M%S')}"


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """The flags that override configuration values (all default to "not given")."""
    g = p.add_argument_group("configuration (each flag overrides the preset and --config)")
    g.add_argument("--preset", choices=list_presets(), help="a published recipe")
    g.add_argument("--config", metavar="FILE.yaml", help="YAML with any config sections")
    g.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                   help="override any config value (repeatable), e.g. --set optim.nesterov=true")
    g.add_argument("--model", help="registered model name (see: mict models)")
    g.add_argument("--pretrained", metavar="imagenet|FILE|none", help="initial 2D weights")
    g.add_argument("--dropout", type=float)
    g.add_argument("--temporal-stride", type=int, choices=(4, 16))
    g.add_argument("--dataset", choices=("ucf101", "hmdb51", "folder", "list"))
    g.add_argument("--root", metavar="PATH", help="dataset root (videos, or the list file)")
    g.add_argument("--test-root", metavar="PATH", help="folder/list datasets: test videos")
    g.add_argument("--split", type=int, choices=(1, 2, 3))
    g.add_argument("--splits", metavar="DIR", help="folder of the official split files")
    g.add_argument("--cache", metavar="DIR", help="frames pre-decoded by mict prepare")
    g.add_argument("--frames", type=int, help="frames per clip")
    g.add_argument("--crop-size", type=int, help="crop side in pixels")
    g.add_argument("--workers", type=int, help="data-loading processes per training process")
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int, help="clips per optimiser step, all processes")
    g.add_argument("--micro-batch-size", type=int,
                   help="clips per forward pass and process (gradient accumulation)")
    g.add_argument("--lr", type=float)
    g.add_argument("--momentum", type=float)
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--seed", type=int)
    g.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    g.add_argument("--amp", choices=("auto", "none", "bf16", "fp16"))
    g.add_argument("--deterministic", action="store_true", default=None,
                   help="deterministic algorithms (slower)")
    g.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                   help="no progress bars")


# ----------------------------------------------------------------------------- train

def train_run(cfg: TrainConfig, run_dir: Path, *, resume: bool = False) -> TrainResult:
    """Build the datasets of ``cfg`` and train (or resume) in ``run_dir``."""
    train = train_dataset(cfg.data)
    test = test_dataset(cfg.data)
    result = Trainer(cfg, run_dir, train, test, train.classes, resume=resume).fit()
    bad = sorted(set(train.bad_videos) | set(test.bad_videos if test is not None else []))
    if bad and env_dist_info().is_main:
        log.warning("%d video(s) could not be read and were skipped:\n%s", len(bad),
                    "\n".join(f"  {path}: {problem}" for path, problem in bad))
    return result


def run_train(args: argparse.Namespace) -> int:
    try:
        return _train_command(args)
    finally:
        cleanup_distributed()


def _train_command(args: argparse.Namespace) -> int:
    if args.resume:
        cfg, run_dir, resume = resume_config(args)
    else:
        cfg = resolve_config(args)
        if env_dist_info().enabled and not args.out:
            raise ValueError("with torchrun, give the run folder: --out RUNDIR")
        run_dir = Path(args.out) if args.out else default_run_dir(cfg)
        if (run_dir / "last.pt").exists():
            raise ValueError(f"{run_dir} already holds a run: continue it with "
                             f"mict train --resume {run_dir}, or choose another --out")
        resume = False
    result = train_run(cfg, run_dir, resume=resume)
    return 130 if result.interrupted else 0


def resume_config(args: argparse.Namespace) -> tuple[TrainConfig, Path, bool]:
    """The configuration of the run in ``--resume RUNDIR`` and whether a checkpoint exists."""
    run_dir = Path(args.resume)
    given = [f"--{d.replace('_', '-')}" for d in (*FLAG_FIELDS, "preset", "config", "set", "out")
             if getattr(args, d, None) is not None and d not in RESUME_FLAGS]
    if given:
        raise ValueError(f"--resume continues a run with its own configuration; drop "
                         f"{', '.join(given)} (only --workers, --device, --no-progress may change)")
    last, saved = run_dir / "last.pt", run_dir / "config.yaml"
    if last.is_file():
        cfg = config_from_dict(load_checkpoint(last)["config"], source=str(last))
        resume = True
    elif saved.is_file():
        log.info("%s has no checkpoint yet: starting its configuration from the beginning",
                 run_dir)
        cfg = load_config(saved)
        resume = False
    else:
        raise FileNotFoundError(f"{run_dir}: no last.pt or config.yaml to resume from")
    runtime = {FLAG_FIELDS[d][1]: getattr(args, d) for d in RESUME_FLAGS
               if getattr(args, d, None) is not None and FLAG_FIELDS[d][0] == "runtime"}
    data = {"workers": args.workers} if args.workers is not None else {}
    cfg = config_from_dict({"runtime": runtime, "data": data}, cfg, "command line")
    return cfg, run_dir, resume


# ----------------------------------------------------------------------------- evaluate

def evaluate_checkpoint(checkpoint: str | Path, *, dataset: str | None = None,
                        root: str | None = None, split: int | None = None,
                        splits_dir: str | None = None, mode: str = "clip",
                        frames: int | None = None, clips: int = 1, batch_size: int = 8,
                        workers: int = 2, device: str = "auto", amp: str = "auto",
                        progress: bool = True) -> EvalReport:
    """Evaluate a checkpoint; dataset settings default to those it was trained with."""
    model, meta = load_model(checkpoint)
    trained = config_from_dict(meta.config) if meta.config else TrainConfig()
    data = trained.data
    changes = {k: v for k, v in (("dataset", dataset), ("root", root), ("split", split),
                                 ("splits_dir", splits_dir)) if v is not None}
    if dataset in ("folder", "list") and root is not None:
        changes["test_root"] = root
    if dataset is not None or root is not None:
        changes["cache"] = None  # prepared frames belong to the training videos
    data = replace(data, crop_size=meta.input_size[1], **changes)
    if frames is None:
        frames = meta.input_size[0]
    whole = mode == "video" and frames == 0
    test = eval_dataset(data, mode=mode, frames=None if whole else frames, clips=clips)
    if test is None:
        raise ValueError("a folder/list dataset needs --root pointing at the test videos")
    dev = resolve_device(device)
    source = {"checkpoint": str(checkpoint), "model": meta.spec.name, "dataset": data.dataset,
              "root": data.test_root if data.dataset in ("folder", "list") else data.root,
              "split": data.split if data.dataset in ("ucf101", "hmdb51") else None}
    return evaluate_model(model.to(dev), test, meta.classes, mode=mode,
                          frames=None if whole else frames, clips=clips, source=source,
                          device=dev, batch_size=1 if whole else batch_size, workers=workers,
                          amp_dtype=resolve_amp(amp, dev), progress=progress)


def save_report(report: EvalReport, out: Path) -> tuple[Path, Path]:
    """``report.json`` and ``confusion.png`` in ``out``."""
    json_path = report.save_json(out / "report.json")
    title = f"{report.source.get('model', '')} - {report.summary().split(':')[0]}"
    png = plot_confusion(report.metrics.confusion, report.classes, out / "confusion.png", title)
    return json_path, png


def default_eval_dir(args: argparse.Namespace, report: EvalReport) -> Path:
    ckpt = Path(args.checkpoint)
    folder = ckpt if ckpt.is_dir() else ckpt.parent
    name = f"eval-{report.source['dataset']}"
    if report.source.get("split"):
        name += f"-split{report.source['split']}"
    name += f"-{report.mode}-{report.frames or 'all'}f"
    if report.clips > 1:
        name += f"-{report.clips}clips"
    return folder / name


def run_evaluate(args: argparse.Namespace) -> int:
    report = evaluate_checkpoint(args.checkpoint, dataset=args.dataset, root=args.root,
                                 split=args.split, splits_dir=args.splits, mode=args.mode,
                                 frames=args.frames, clips=args.clips,
                                 batch_size=args.batch_size, workers=args.workers,
                                 device=args.device, amp=args.amp)
    out = Path(args.out) if args.out else default_eval_dir(args, report)
    json_path, png = save_report(report, out)
    print(report.summary())
    worst = sorted((a, c) for c, a in zip(report.classes, report.metrics.per_class_accuracy,
                                          strict=True) if a == a)[:5]
    print("weakest classes: " + ", ".join(f"{c} {a:.0%}" for a, c in worst))
    print(f"report: {json_path}\nconfusion matrix: {png}")
    return 0


# ----------------------------------------------------------------------------- crossval

def run_finished(run_dir: Path, epochs: int) -> bool:
    last = run_dir / "last.pt"
    if not last.is_file():
        return False
    return int(load_checkpoint(last)["training_state"]["epoch"]) >= epochs


def model_costs(cfg: TrainConfig, num_classes: int, device: torch.device) -> dict[str, float]:
    """Parameters, training activation memory per clip and inference frames/s of ``cfg``."""
    size = (cfg.data.frames, cfg.data.crop_size, cfg.data.crop_size)
    model = build_model(cfg.model.name, num_classes, **cfg.model.options())
    return {
        "params_m": costs.count_parameters(model) / 1e6,
        "memory_mb_per_clip": costs.activation_bytes_per_clip(model, size, device=device) / 2**20,
        "frames_per_s": costs.inference_frames_per_second(
            model, size, device=device, amp_dtype=resolve_amp(cfg.runtime.amp, device)),
    }


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def crossval_table(name: str, rows: list[dict[str, Any]], cost: dict[str, float],
                   device: str) -> str:
    """The Markdown table of a cross-validation."""
    t1 = _mean_std([100 * r["top1"] for r in rows])
    t5 = _mean_std([100 * r["top5"] for r in rows])
    lines = [
        f"| model | splits | top-1 (%) | top-5 (%) | params (M) | memory/clip (MB) | "
        f"frames/s ({device}) |",
        "|---|---|---|---|---|---|---|",
        f"| {name} | {len(rows)} | {t1[0]:.1f} ± {t1[1]:.1f} | {t5[0]:.1f} ± {t5[1]:.1f} | "
        f"{cost['params_m']:.1f} | {cost['memory_mb_per_clip']:.1f} | "
        f"{cost['frames_per_s']:.0f} |",
        "",
        "| split | top-1 (%) | top-5 (%) | mean class acc. (%) | test videos |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {r['split']} | {100 * r['top1']:.1f} | {100 * r['top5']:.1f} | "
              f"{100 * r['mean_class_accuracy']:.1f} | {r['num_samples']} |" for r in rows]
    return "\n".join(lines) + "\n"


def run_crossval(args: argparse.Namespace) -> int:
    try:
        return _crossval_command(args)
    finally:
        cleanup_distributed()


def _crossval_command(args: argparse.Namespace) -> int:
    base = resolve_config(args)
    name = base.preset or base.model.name
    out = Path(args.out) if args.out else Path("runs") / f"crossval-{name}"
    dist = env_dist_info()
    rows = []
    classes: list[str] = []
    for split in args.folds:
        cfg = replace(base, data=replace(base.data, split=split))
        run_dir = out / f"split{split}"
        if run_finished(run_dir, cfg.schedule.epochs):
            log.info("split %d: already trained in %s", split, run_dir)
        else:
            train_run(cfg, run_dir, resume=(run_dir / "last.pt").is_file())
        if not dist.is_main:
            barrier()  # wait for the main process's evaluation
            continue
        weights = run_dir / ("last.pt" if args.weights == "final" else "best.pt")
        if not weights.is_file():
            raise RuntimeError(f"{weights}: not written (no test evaluation during training?)")
        report = evaluate_checkpoint(weights, mode="clip", workers=cfg.data.workers,
                                     device=cfg.runtime.device, amp=cfg.runtime.amp,
                                     progress=cfg.runtime.progress)
        save_report(report, run_dir / "eval-clip")
        m = report.metrics
        rows.append({"split": split, "top1": m.top1, "top5": m.top5,
                     "mean_class_accuracy": m.mean_class_accuracy, "num_samples": m.num_samples,
                     "run": str(run_dir)})
        classes = report.classes
        log.info("split %d: %s", split, report.summary())
        barrier()
    if not dist.is_main:
        return 0
    device = resolve_device(base.runtime.device)
    cost = model_costs(base, len(classes), device)
    name = base.model.name + (f" (ts {base.model.temporal_stride})"
                              if base.model.temporal_stride else "")
    table = crossval_table(name, rows, cost, device.type)
    (out / "crossval.md").write_text(table, encoding="utf-8")
    top1, top5 = (_mean_std([r[k] for r in rows]) for k in ("top1", "top5"))
    summary = {"preset": base.preset, "model": base.model.name, "weights": args.weights,
               "device": str(device), "splits": rows, "top1_mean": top1[0], "top1_std": top1[1],
               "top5_mean": top5[0], "top5_std": top5[1], **cost, "config": base.to_dict()}
    (out / "crossval.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(table)
    print(f"tables: {out / 'crossval.md'}, {out / 'crossval.json'}")
    return 0


# ----------------------------------------------------------------------------- sweep and plot

def run_sweep(args: argparse.Namespace) -> int:
    labels = args.labels or _checkpoint_labels(args.checkpoint)
    if len(labels) != len(args.checkpoint):
        raise ValueError(f"{len(labels)} --labels for {len(args.checkpoint)} checkpoints")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, curves = [], {}
    for ckpt, label in zip(args.checkpoint, labels, strict=True):
        for length in args.lengths:
            report = evaluate_checkpoint(ckpt, dataset=args.dataset, root=args.root,
                                         split=args.split, splits_dir=args.splits,
                                         mode="video", frames=length,
                                         batch_size=args.batch_size, workers=args.workers,
                                         device=args.device, amp=args.amp)
            m = report.metrics
            rows.append({"label": label, "checkpoint": str(ckpt), "frames": length,
                         "videos": m.num_samples, "top1": round(m.top1, 6),
                         "top5": round(m.top5, 6),
                         "mean_class_accuracy": round(m.mean_class_accuracy, 6)})
            curves.setdefault(label, []).append((length, m.top1))
            print(f"{label:<24} {length:>5} frames  top-1 {m.top1:.2%}  top-5 {m.top5:.2%}")
    csv_path = out / "sweep.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    png = plot_accuracy_vs_length(curves, out / "sweep.png",
                                  "video-level top-1 versus the number of frames")
    print(f"table: {csv_path}\nplot: {png}")
    return 0


def _checkpoint_labels(paths: list[str]) -> list[str]:
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


def run_plot(args: argparse.Namespace) -> int:
    if args.labels and len(args.labels) != len(args.runs):
        raise ValueError(f"{len(args.labels)} --labels for {len(args.runs)} runs")
    out = Path(args.out) if args.out else Path(args.runs[0]) / "curves.png"
    path = plot_training_curves(args.runs, out, args.labels)
    print(f"training curves: {path}")
    return 0


# ----------------------------------------------------------------------------- registration

def _add_eval_data_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", choices=("ucf101", "hmdb51", "folder", "list"),
                   help="default: the checkpoint's training dataset")
    p.add_argument("--root", metavar="PATH", help="default: the checkpoint's training root")
    p.add_argument("--split", type=int, choices=(1, 2, 3))
    p.add_argument("--splits", metavar="DIR", help="folder of the official split files")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", choices=("auto", "none", "bf16", "fp16"), default="auto")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train a model (presets reproduce the published recipes)",
        description="Train on a video dataset. Resume any stopped run with --resume RUNDIR. "
                    "Several GPUs/machines: torchrun --nproc_per_node N -m mictnet.cli train "
                    "... --out RUNDIR.")
    add_config_flags(p)
    p.add_argument("--out", metavar="RUNDIR", help="run folder (default runs/<name>-<time>)")
    p.add_argument("--resume", metavar="RUNDIR", help="continue the run in RUNDIR")
    p.set_defaults(func=run_train)

    p = subparsers.add_parser("evaluate", help="top-1/top-5, per-class accuracy, confusion "
                                               "matrix of a checkpoint")
    p.add_argument("--checkpoint", required=True, metavar="PATH",
                   help="a checkpoint, or a run folder (its best.pt)")
    _add_eval_data_flags(p)
    p.add_argument("--mode", choices=EVAL_MODES, default="clip",
                   help="clip: the first --frames frames, centre crop (the published protocol); "
                        "video: the first --frames frames (0: all) or --clips clips averaged")
    p.add_argument("--frames", type=int, help="frames per clip (default: the training length)")
    p.add_argument("--clips", type=int, default=1, help="video mode: clips averaged per video")
    p.add_argument("--out", metavar="DIR", help="report folder (default: beside the checkpoint)")
    p.set_defaults(func=run_evaluate)

    p = subparsers.add_parser("crossval", help="train and evaluate on the three official splits: "
                                               "the published table")
    add_config_flags(p)
    p.add_argument("--folds", type=int, nargs="+", choices=(1, 2, 3), default=[1, 2, 3],
                   help="which splits (default 1 2 3)")
    p.add_argument("--weights", choices=("final", "best"), default="final",
                   help="evaluate the final weights (default) or the epoch with the best test "
                        "top-1 (chosen on the test split itself, so optimistic)")
    p.add_argument("--out", metavar="DIR", help="default runs/crossval-<preset>")
    p.set_defaults(func=run_crossval)

    p = subparsers.add_parser("sweep", help="video-level accuracy versus the number of frames")
    p.add_argument("--checkpoint", required=True, nargs="+", metavar="PATH")
    p.add_argument("--labels", nargs="+", help="one legend name per checkpoint")
    p.add_argument("--lengths", type=int, nargs="+", default=[16, 32, 64, 128, 300])
    _add_eval_data_flags(p)
    p.add_argument("--out", metavar="DIR", default="sweep", help="default ./sweep")
    p.set_defaults(func=run_sweep)

    p = subparsers.add_parser("plot", help="training curves (loss, top-1) from metrics.csv")
    p.add_argument("runs", nargs="+", metavar="RUNDIR", help="run folders or metrics.csv files")
    p.add_argument("--labels", nargs="+", help="one legend name per run")
    p.add_argument("--out", metavar="PNG", help="default RUNDIR/curves.png")
    p.set_defaults(func=run_plot)

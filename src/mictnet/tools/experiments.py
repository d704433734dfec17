"""``mict train``, ``mict evaluate``, ``mict crossval``, ``mict sweep`` and ``mict plot``."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from ..engine.arg_types import non_negative_int
from ..engine.checkpoint import load_checkpoint
from ..engine.config_flags import (
    add_config_flags,
    add_section_flags,
    apply_flags,
    config_flags,
    field_choices,
    given_flags,
    section_from_args,
)
from ..engine.distributed import env_dist_info, releases_process_group
from ..engine.evaluate import EvalReport
from ..engine.experiments import checkpoint_labels, crossval, length_sweep
from ..engine.fusion import fuse_runs
from ..engine.plots import plot_training_curves
from ..engine.resolve import resolve_config
from ..engine.run import (
    PREDICTIONS_FILE,
    claim_run_dir,
    evaluate_checkpoint,
    move_aside,
    save_report,
    train_run,
)
from ..engine.train_config import (
    DataConfig,
    EvalDataConfig,
    InferenceConfig,
    TrainConfig,
    config_from_dict,
    config_yaml,
    load_config,
)

log = logging.getLogger("mictnet")


def default_run_dir(cfg: TrainConfig) -> Path:
    name = cfg.preset or cfg.model.name
    return Path("runs") / f"{name}-{cfg.data.dataset}-split{cfg.data.split}-" \
                          f"{time.strftime('%Y%m%d-%H%M%S')}"


# ----------------------------------------------------------------------------- train

@releases_process_group
def run_train(args: argparse.Namespace) -> int:
    if args.print_config:
        cfg = resume_config(args)[0] if args.resume else resolve_config(args)
        print(config_yaml(cfg), end="")
        return 0
    if args.resume:
        cfg, run_dir, resume = resume_config(args)
    else:
        cfg = resolve_config(args)
        if env_dist_info().enabled and not args.out:
            raise ValueError("with torchrun, give the run folder: --out RUNDIR")
        run_dir = Path(args.out) if args.out else default_run_dir(cfg)
        if env_dist_info().is_main:
            claim_run_dir(run_dir, overwrite=args.overwrite)
        resume = False
    result = train_run(cfg, run_dir, resume=resume)
    return 130 if result.interrupted else 0


def resume_config(args: argparse.Namespace) -> tuple[TrainConfig, Path, bool]:
    """The configuration of the run in ``--resume RUNDIR`` and whether a checkpoint exists."""
    run_dir = Path(args.resume)
    flags = given_flags(args)
    given = [f.option for f in flags if not f.resumable]
    given += [f"--{d}" for d in ("preset", "config", "set", "out", "overwrite")
              if getattr(args, d, None)]
    if given:
        allowed = ", ".join(f.option for f in config_flags() if f.resumable)
        raise ValueError(f"--resume continues a run with its own configuration; drop "
                         f"{', '.join(given)} (only {allowed} may change)")
    last, saved = run_dir / "last.pt", run_dir / "config.yaml"
    if last.is_file():
        cfg = config_from_dict(load_checkpoint(last)["config"], source=str(last))
        resume = True
    elif saved.is_file():
        log.info("%s has no checkpoint yet: starting its configuration from the beginning",
                 run_dir)
        cfg = load_config(saved)
        if env_dist_info().is_main:
            move_aside(run_dir)  # the killed attempt's best.pt, metrics.csv and log stay
        resume = False
    else:
        raise FileNotFoundError(f"{run_dir}: no last.pt or config.yaml to resume from")
    return apply_flags(cfg, args, flags), run_dir, resume


# ----------------------------------------------------------------------------- evaluate

def default_eval_dir(args: argparse.Namespace, report: EvalReport) -> Path:
    ckpt = Path(args.checkpoint)
    folder = ckpt if ckpt.is_dir() else ckpt.parent
    name = f"eval-{report.source['dataset']}"
    split = report.source.get("split")
    if split:
        name += f"-{split}" if isinstance(split, str) else f"-split{split}"
    name += f"-{report.mode}-{report.frames or 'all'}f"
    if report.clips > 1:
        name += f"-{report.clips}clips"
    return folder / name


def run_evaluate(args: argparse.Namespace) -> int:
    run = section_from_args(args, InferenceConfig)
    if args.fuse:
        return run_fuse(args, run)
    if not args.checkpoint:
        raise ValueError("give --checkpoint PATH (or --fuse RUN_RGB RUN_FLOW)")
    report = evaluate_checkpoint(args.checkpoint, section_from_args(args, EvalDataConfig), run)
    out = Path(args.out) if args.out else default_eval_dir(args, report)
    json_path, png = save_report(report, out)
    print(report.summary())
    if report.metrics is not None:
        worst = sorted((a, c) for c, a in zip(report.classes,
                                              report.metrics.per_class_accuracy,
                                              strict=True) if a == a)[:5]
        print("weakest classes: " + ", ".join(f"{c} {a:.0%}" for a, c in worst))
    print(f"report: {json_path}\npredictions: {json_path.parent / PREDICTIONS_FILE}")
    if png is not None:
        print(f"confusion matrix: {png}")
    return 0


def run_fuse(args: argparse.Namespace, run: InferenceConfig) -> int:
    given = [f"--{n.replace('_', '-')}" for n in ("checkpoint", "dataset", "root", "split",
                                                  "splits_dir", "frames")
             if getattr(args, n) is not None] + (["--mode video"] if args.mode != "clip" else [])
    if given:
        raise ValueError(f"--fuse scores both runs on their own test split (clip mode); drop "
                         f"{', '.join(given)}")
    report = fuse_runs(*args.fuse, weights=fusion_weights(args.fusion_weights),
                       batch_size=run.batch_size, workers=run.workers, device=run.device,
                       amp=run.amp)
    rgb = Path(args.fuse[0])
    out = Path(args.out) if args.out else (rgb if rgb.is_dir() else rgb.parent) / "eval-fused"
    json_path = report.save(out)
    print(report.table(), end="")
    print(f"report: {json_path}, {out / 'fusion.md'}\npredictions (fused): "
          f"{out / PREDICTIONS_FILE}")
    return 0


def fusion_weights(values: list[str] | None) -> tuple[float, float] | None:
    """``--weights auto`` (or none given): ``None``; else two numbers, rgb then flow."""
    if not values or values == ["auto"]:
        return None
    try:
        weights = tuple(float(v) for v in values)
    except ValueError:
        raise ValueError(f"--weights takes auto or two numbers (rgb flow), got "
                         f"{' '.join(values)}") from None
    if len(weights) != 2:
        raise ValueError(f"--weights takes auto or two numbers (rgb flow), got {len(weights)}")
    return weights


# ------------------------------------------------------------------------ crossval, sweep, plot

@releases_process_group
def run_crossval(args: argparse.Namespace) -> int:
    base = resolve_config(args)
    name = base.preset or base.model.name
    out = Path(args.out) if args.out else Path("runs") / f"crossval-{name}"
    table = crossval(base, out, args.folds, args.weights, fusion_weights(args.fusion_weights))
    if table is not None:
        print(table)
        print(f"tables: {out / 'crossval.md'}, {out / 'crossval.json'}")
    return 0


def run_sweep(args: argparse.Namespace) -> int:
    def show(row: dict) -> None:
        print(f"{row['label']:<24} {row['frames']:>5} frames  top-1 {row['top1']:.2%}  "
              f"top-5 {row['top5']:.2%}")

    labels = args.labels or checkpoint_labels(args.checkpoint)
    csv_path, png = length_sweep(args.checkpoint, labels, args.lengths, Path(args.out),
                                 section_from_args(args, EvalDataConfig),
                                 section_from_args(args, InferenceConfig), on_row=show)
    print(f"table: {csv_path}\nplot: {png}")
    return 0


def run_plot(args: argparse.Namespace) -> int:
    if args.labels and len(args.labels) != len(args.runs):
        raise ValueError(f"{len(args.labels)} --labels for {len(args.runs)} runs")
    first = Path(args.runs[0])  # a run folder, or its metrics.csv
    out = Path(args.out) if args.out else (first if first.is_dir() else first.parent) / "curves.png"
    path = plot_training_curves(args.runs, out, args.labels)
    print(f"training curves: {path}")
    return 0


# ----------------------------------------------------------------------------- registration

def _add_eval_data_flags(p: argparse.ArgumentParser, names: tuple[str, ...]) -> None:
    add_section_flags(p, EvalDataConfig, names)
    add_section_flags(p, InferenceConfig, ("device", "amp", "batch_size", "workers"))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        description="Train on a video dataset. Resume any stopped run with --resume RUNDIR. "
                    "Several GPUs/machines: torchrun --nproc_per_node N -m mictnet.cli train "
                    "... --out RUNDIR.")
    add_config_flags(p)
    p.add_argument("--out", metavar="RUNDIR", help="run folder (default runs/<name>-<time>); "
                                                   "one that holds files is refused")
    p.add_argument("--overwrite", action="store_true",
                   help="start anew in a --out folder that holds files: they are moved into "
                        "RUNDIR/previous-<time>/ (nothing is deleted)")
    p.add_argument("--resume", metavar="RUNDIR", help="continue the run in RUNDIR")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved configuration (config.yaml's content) and exit "
                        "without training")
    p.set_defaults(func=run_train)

    p = subparsers.add_parser("evaluate")
    p.add_argument("--checkpoint", metavar="PATH",
                   help="a checkpoint, or a run folder (its best.pt)")
    p.add_argument("--fuse", nargs=2, metavar=("RUN_RGB", "RUN_FLOW"),
                   help="two-stream late fusion: score an RGB and a flow checkpoint (or run "
                        "folders) on the same test videos and write one report (rgb, flow, "
                        "fused rows) to --out (default: eval-fused beside RUN_RGB's checkpoint)")
    p.add_argument("--weights", dest="fusion_weights", nargs="+", metavar="W",
                   help="--fuse: rgb and flow score weights, e.g. 1 1.5 (MMAction2's "
                        "coefficients), or auto (the default): chosen on the training split's "
                        "videos, never on the test split")
    _add_eval_data_flags(p, ("dataset", "root", "splits_dir", "split", "mode", "frames",
                             "strict"))
    add_section_flags(p, InferenceConfig, ("clips",))
    p.add_argument("--out", metavar="DIR", help="report folder (default: beside the checkpoint)")
    p.set_defaults(func=run_evaluate)

    p = subparsers.add_parser("crossval")
    add_config_flags(p)
    splits = field_choices(DataConfig, "split")
    p.add_argument("--folds", type=int, nargs="+", choices=splits, default=list(splits),
                   help="which splits (default 1 2 3)")
    p.add_argument("--weights", choices=("final", "best"), default="final",
                   help="evaluate the final weights (default) or the epoch with the best test "
                        "top-1 (chosen on the test split itself, so optimistic)")
    p.add_argument("--fusion-weights", nargs="+", metavar="W",
                   help="--modality both: rgb and flow score weights (e.g. 1 1.5), or auto "
                        "(the default): chosen per split on its training videos")
    p.add_argument("--out", metavar="DIR", help="default runs/crossval-<preset>")
    p.set_defaults(func=run_crossval)

    p = subparsers.add_parser("sweep")
    p.add_argument("--checkpoint", required=True, nargs="+", metavar="PATH")
    p.add_argument("--labels", nargs="+", help="one legend name per checkpoint")
    p.add_argument("--lengths", type=non_negative_int, nargs="+", default=[16, 32, 64, 128, 300],
                   help="frames read from the start of each video (0: all)")
    _add_eval_data_flags(p, ("dataset", "root", "splits_dir", "split"))
    p.add_argument("--out", metavar="DIR", default="sweep", help="default ./sweep")
    p.set_defaults(func=run_sweep)

    p = subparsers.add_parser("plot")
    p.add_argument("runs", nargs="+", metavar="RUNDIR", help="run folders or metrics.csv files")
    p.add_argument("--labels", nargs="+", help="one legend name per run")
    p.add_argument("--out", metavar="PNG", help="default RUNDIR/curves.png")
    p.set_defaults(func=run_plot)

"""``mict demo``: generate the synthetic motion dataset, train MiCT-ResNet-18, evaluate, report.

Everything runs on the CPU of a laptop with nothing downloaded: the dataset is generated (and
cached), the model trains from scratch with the ``demo`` preset, and the test split's top-1/top-5,
confusion matrix and training curves come out at the end, with the commands to go further.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..data.synthetic import DEMO_DATASET, SynthConfig, generate_dataset, read_metadata
from ..engine.distributed import resolve_device
from ..engine.evaluate import EvalReport
from ..engine.plots import plot_training_curves
from ..engine.precision import Precision, resolve_precision
from ..engine.presets import preset
from ..engine.resolve import derived
from ..engine.run import evaluate_checkpoint, prepare_run, save_report, train_run
from ..engine.train_config import TrainConfig


@dataclass(frozen=True)
class DemoPlan:
    """A dataset, a training preset (and the one for devices without fast reduced precision)
    and the folder names they use."""

    dataset: SynthConfig
    preset: str
    name: str
    fp32_preset: str | None = None

    def choose_preset(self, device: str) -> tuple[str, Precision]:
        """The preset for what ``device`` runs natively, and the precision it resolved to."""
        precision = resolve_precision("auto", resolve_device(device))
        if precision.dtype is None and self.fp32_preset:
            return self.fp32_preset, precision
        return self.preset, precision


FULL = DemoPlan(DEMO_DATASET, "demo", "full", fp32_preset="demo-fp32")
# 4 classes (two time-reversed pairs) at 32×32 pixels: about a minute on 2 cores.
QUICK = DemoPlan(SynthConfig(classes=4, groups=25, clips_per_group=2, frames=16, size=(32, 32)),
                 "demo-quick", "quick")


def default_data_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "mictnet" / "demo-data"


def prepare_dataset(folder: Path, config: SynthConfig, progress: bool = True
                    ) -> tuple[Path, bool]:
    """The dataset's video root, generated unless a complete copy is already there."""
    meta = read_metadata(folder) if folder.is_dir() else None
    reused = bool(meta and meta.get("complete") and "objects" in meta  # boxes: newer files
                  and meta.get("config") == asdict(config) | {"size": list(config.size)})
    return generate_dataset(folder, config, progress=progress), reused


def pair_accuracies(report: EvalReport, pairs: list[list[str]]) -> list[tuple[str, float]]:
    """Accuracy on the clips of each time-reversed pair of classes."""
    out = []
    cm, names = report.metrics.confusion, report.classes
    for first, second in pairs:
        if first in names and second in names:
            rows = [cm[names.index(first)], cm[names.index(second)]]
            right = rows[0][names.index(first)] + rows[1][names.index(second)]
            total = sum(rows[0]) + sum(rows[1])
            if total:
                out.append((f"{first}/{second}", right / total))
    return out


def run(args: argparse.Namespace) -> int:
    start = time.monotonic()
    plan = QUICK if args.quick else FULL
    data_dir = (Path(args.data) if args.data else default_data_dir()) / plan.name
    out = Path(args.out)
    synth = plan.dataset
    print(f"mict demo{' --quick' if args.quick else ''}: MiCT-ResNet-18 learns {synth.classes} "
          f"motion classes from scratch on synthetic videos ({synth.size[0]}x{synth.size[1]}, "
          f"{synth.frames} frames), CPU only, nothing downloaded.")
    videos, reused = prepare_dataset(data_dir, synth, progress=not args.no_progress)
    meta = read_metadata(data_dir) or {}
    print(f"dataset: {videos} ({'reused' if reused else 'generated'}; "
          f"{synth.classes * synth.groups * synth.clips_per_group} videos, UCF-101 layout, "
          "split 1)")

    name, precision = plan.choose_preset(preset(plan.preset).runtime.device)
    cfg: TrainConfig = preset(name)
    print(f"precision: {precision.reason} -> preset {name} ({cfg.data.crop_size}x"
          f"{cfg.data.crop_size} clips, {cfg.schedule.epochs} epochs)")
    cfg = derived(replace(cfg, data=replace(cfg.data, root=str(videos.resolve()), split=1)))
    cfg = replace(cfg, runtime=replace(cfg.runtime, seed=args.seed,
                                       progress=cfg.runtime.progress and not args.no_progress))
    run_dir = out / f"run-{plan.name}"
    resume = prepare_run(run_dir, cfg.schedule.epochs, restart_finished=True) == "unfinished"
    if resume:
        print(f"resuming the unfinished demo run in {run_dir}")
    result = train_run(cfg, run_dir, resume=resume)
    if result.interrupted:
        return 130

    # the final weights: picking the best epoch on the test split would flatter the figure
    report = evaluate_checkpoint(run_dir / "last.pt", run=cfg.inference(),
                                 progress=cfg.runtime.progress)
    json_path, confusion = save_report(report, run_dir / "eval-split1")
    curves = plot_training_curves([run_dir], run_dir / "curves.png")
    m = report.metrics
    minutes = (time.monotonic() - start) / 60
    lines = [
        "",
        f"final MiCT-ResNet-18 on the synthetic test split ({m.num_samples} videos, first "
        f"{report.frames} frames, centre crop): top-1 {m.top1:.1%}  top-5 {m.top5:.1%}  "
        f"mean class accuracy {m.mean_class_accuracy:.1%}  ({minutes:.1f} min in all)",
    ]
    pairs = pair_accuracies(report, meta.get("reversed_pairs", []))
    if pairs:
        lines.append("time-reversed pairs (no single frame tells them apart): "
                     + ", ".join(f"{name} {acc:.0%}" for name, acc in pairs))
    lines += [
        f"confusion matrix: {confusion}",
        f"training curves:  {curves}",
        f"report:           {json_path}",
        f"run folder:       {run_dir} (best.pt, last.pt, metrics.csv, train.log, "
        "tensorboard/)",
        "",
        "Go further:",
        f"  mict predict --checkpoint {run_dir / 'last.pt'} "
        f"{videos / meta.get('classes', ['ZoomIn'])[0]}/*.avi",
        "  your own videos (one folder per class):",
        "    mict train --dataset folder --root MY_VIDEOS/train --test-root MY_VIDEOS/test "
        "--model mict_resnet18 --pretrained imagenet --out runs/mine",
        "  UCF-101 (the published recipe; UCF-101/ and ucfTrainTestlist/ side by side):",
        "    mict check --dataset ucf101 --root /data/UCF-101",
        "    mict train --preset mict18-ucf101 --root /data/UCF-101 --split 1 "
        "--out runs/mict18-split1",
        "    mict crossval --preset mict18-ucf101 --root /data/UCF-101",
    ]
    print("\n".join(lines))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        description="Generate the synthetic motion dataset (cached), train MiCT-ResNet-18 on "
                    "split 1 with the demo preset, evaluate it and print where the results are.")
    p.add_argument("--quick", action="store_true",
                   help="a smaller dataset and fewer epochs (about a minute on 2 cores)")
    p.add_argument("--out", default="mict-demo", metavar="DIR",
                   help="where the run goes (default ./mict-demo)")
    p.add_argument("--data", metavar="DIR",
                   help=f"dataset cache (default {default_data_dir()})")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the weights, data order and augmentation (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)

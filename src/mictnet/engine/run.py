"""Whole runs from a configuration: train (or resume) in a run folder, evaluate a checkpoint.

The Python counterparts of ``mict train`` and ``mict evaluate``: datasets from the
:class:`DataConfig`, loaders (:func:`~.batching.build_loaders`), the :class:`~.train.Trainer`,
and the evaluation report of a checkpoint on the test set it was trained for (or another).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Literal

from .batching import build_loaders
from .build_data import eval_dataset, test_dataset, train_dataset
from .checkpoint import load_checkpoint, load_model
from .distributed import env_dist_info, resolve_device
from .evaluate import EvalReport, evaluate_model
from .precision import resolve_amp
from .train import Trainer, TrainResult
from .train_config import TrainConfig, config_from_dict

log = logging.getLogger("mictnet")

RunStatus = Literal["new", "unfinished", "finished"]


def train_run(cfg: TrainConfig, run_dir: str | Path, *, resume: bool = False) -> TrainResult:
    """Build the datasets and loaders of ``cfg`` and train (or resume) in ``run_dir``."""
    train = train_dataset(cfg.data)
    test = test_dataset(cfg.data)
    trainer = Trainer(cfg, run_dir, build_loaders(cfg, train, test), train.classes,
                      resume=resume)
    result = trainer.fit()
    bad = sorted(set(train.bad_videos) | set(test.bad_videos if test is not None else []))
    if bad and env_dist_info().is_main:
        log.warning("%d video(s) could not be read and were skipped:\n%s", len(bad),
                    "\n".join(f"  {path}: {problem}" for path, problem in bad))
    return result


def run_status(run_dir: str | Path, epochs: int) -> RunStatus:
    """Whether ``run_dir`` holds no readable checkpoint, an unfinished or a finished run."""
    last = Path(run_dir) / "last.pt"
    if not last.is_file():
        return "new"
    try:
        done = int(load_checkpoint(last)["training_state"]["epoch"])
    except (ValueError, KeyError, TypeError):
        return "new"  # unreadable: start again
    return "finished" if done >= epochs else "unfinished"


def prepare_run(run_dir: str | Path, epochs: int, *, restart_finished: bool = False
                ) -> RunStatus:
    """The state ``run_dir`` is in; a run folder (``config.yaml``) that holds nothing to resume
    is cleared, and so is a finished run with ``restart_finished``."""
    run_dir = Path(run_dir)
    status = run_status(run_dir, epochs)
    stale = status == "new" or status == "finished" and restart_finished
    if stale and (run_dir / "config.yaml").is_file():
        shutil.rmtree(run_dir)
        return "new"
    return status


def evaluate_checkpoint(checkpoint: str | Path, *, dataset: str | None = None,
                        root: str | None = None, split: int | None = None,
                        splits_dir: str | None = None, mode: str = "clip",
                        frames: int | None = None, clips: int = 1, batch_size: int = 8,
                        workers: int = 2, device: str = "auto", amp: str = "auto",
                        progress: bool = True) -> EvalReport:
    """Evaluate a checkpoint; dataset settings default to those it was trained with."""
    model, meta = load_model(checkpoint)
    trained = config_from_dict(meta.config) if meta.config else TrainConfig()
    changes = {k: v for k, v in (("dataset", dataset), ("root", root), ("split", split),
                                 ("splits_dir", splits_dir)) if v is not None}
    if dataset in ("folder", "list") and root is not None:
        changes["test_root"] = root
    if dataset is not None or root is not None:
        changes["cache"] = None  # prepared frames belong to the training videos
    data = replace(trained.data, crop_size=meta.input_size[1], **changes)
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


def save_report(report: EvalReport, out: str | Path) -> tuple[Path, Path]:
    """``report.json`` and ``confusion.png`` in ``out``."""
    from .plots import plot_confusion  # matplotlib only when a figure is drawn

    out = Path(out)
    json_path = report.save_json(out / "report.json")
    title = f"{report.source.get('model', '')} - {report.summary().split(':')[0]}"
    png = plot_confusion(report.metrics.confusion, report.classes, out / "confusion.png", title)
    return json_path, png

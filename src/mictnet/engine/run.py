"""Whole runs from a configuration: train (or resume) in a run folder, evaluate a checkpoint.

The Python counterparts of ``mict train`` and ``mict evaluate``: datasets from the
:class:`DataConfig`, loaders (:func:`~.batching.build_loaders`), the :class:`~.train.Trainer`,
and the evaluation report of a checkpoint on the test set it was trained for (or another).
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import torch

from ..data import Kinetics, VideoDataset
from ..data.kinetics import Skipped, missing_file, write_missing
from ..models import build_model, get_variant
from .batching import build_loaders
from .build_data import eval_dataset, test_dataset, train_dataset
from .checkpoint import load_checkpoint, load_model, remove_stale_temp_files
from .config_flags import config_flags
from .distributed import env_dist_info, resolve_device
from .evaluate import EvalReport, evaluate_model
from .precision import resolve_amp
from .presets import check_init_from
from .resolve import clip_spec, derived
from .runlog import log as run_log
from .train import Trainer, TrainResult
from .train_config import (
    EvalDataConfig,
    InferenceConfig,
    TrainConfig,
    config_from_dict,
    load_config,
)

log = logging.getLogger("mictnet")

RunStatus = Literal["new", "unfinished", "finished"]
PREVIOUS = "previous-"  # folders of a run folder's moved-aside files: previous-<time>
CLASSES_FILE = "classes.txt"  # a run's class names, one per line, in label order
PREDICTIONS_FILE = "predictions.csv"  # an evaluation's per-video top-5


def train_run(cfg: TrainConfig, run_dir: str | Path, *, resume: bool = False) -> TrainResult:
    """Build the datasets and loaders of ``cfg`` and train (or resume) in ``run_dir``.

    A resume first checks that ``last.pt`` belongs to the run folder (:func:`check_resumable`).
    The run folder also gets ``classes.txt`` (the class names in label order) and, for
    Kinetics, ``missing-<split>.csv`` listing the clips skipped (rewritten at the end with the
    videos that failed to decode meanwhile).
    """
    get_variant(cfg.model.name)  # an unknown model is named before any video is opened
    if cfg.data.modality == "both":
        raise ValueError("data.modality both is two runs (mict crossval --modality both); "
                         "train one stream at a time: --modality rgb or --modality flow")
    cfg = derived(cfg)  # the model's clip where the config leaves it unset
    if resume:
        check_resumable(run_dir)
    else:
        check_init_from(cfg)  # a fine-tuning preset needs the run it fine-tunes
    clip = clip_spec(cfg)
    train = train_dataset(cfg.data, clip)
    test = test_dataset(cfg.data, clip)
    loaders = build_loaders(cfg, train, test)
    check_micro_batch(cfg, loaders.micro_batch, len(train.classes))
    trainer = Trainer(cfg, run_dir, loaders, train.classes, resume=resume)
    main = env_dist_info().is_main
    datasets = [d for d in (train, test) if d is not None]
    if main:
        (Path(run_dir) / CLASSES_FILE).write_text("".join(f"{c}\n" for c in train.classes),
                                                  encoding="utf-8")
        counts = {id(d): _record_skipped(d, run_dir) for d in datasets}
    result = trainer.fit()
    if main:
        for d in datasets:
            if _record_skipped(d, run_dir, counts[id(d)]) is None:
                _warn_bad_videos(d)
    return result


def check_micro_batch(cfg: TrainConfig, micro_batch: int, num_classes: int) -> None:
    """Refuse, before anything is written, a micro-batch the model cannot train on: a batch
    norm that sees one value per channel (one clip whose features shrink to 1×1×1). Checked
    with a forward pass on the meta device (shapes only, no arithmetic)."""
    size = clip_spec(cfg).input_size
    with torch.device("meta"):
        model = build_model(cfg.model.name, num_classes, **cfg.model.options()).train()
        clips = torch.empty(micro_batch, clip_spec(cfg).in_channels, *size)
    try:
        model(clips)
    except Exception as err:  # a model the meta device cannot run is checked by training
        if not isinstance(err, ValueError) or "more than 1 value per channel" not in str(err):
            log.debug("micro-batch check skipped: %s", err)
            return
        raise ValueError(
            f"{micro_batch} clip(s) per forward pass are too few for {cfg.model.name} at "
            f"{'x'.join(map(str, size))}: a batch norm would see one value "
            "per channel; raise --batch-size (or --micro-batch-size), or use larger clips"
        ) from None


def _record_skipped(dataset: VideoDataset, folder: str | Path, known: int | None = None
                    ) -> int | None:
    """For a Kinetics dataset, the number of clips skipped so far, listed in ``folder`` (and
    logged into ``train.log`` while the run records it) unless ``known`` were already;
    ``None`` for another dataset."""
    if not isinstance(dataset, Kinetics):
        return None
    skipped = dataset.skipped()
    if len(skipped) != known:
        _write_skipped(skipped, dataset.listed, dataset.split, folder, run_log)
    return len(skipped)


def _write_skipped(skipped: list[Skipped], listed: int, split: str, folder: str | Path,
                   logger: logging.Logger) -> None:
    """``folder/missing-<split>.csv`` (:func:`write_missing`), and a line saying so."""
    path = write_missing(skipped, missing_file(folder, split))
    if path is not None:
        logger.warning("%d of %d %s videos missing/unreadable, skipped; listed in %s",
                       len(skipped), listed, split, path)


def _warn_bad_videos(dataset: VideoDataset) -> None:
    bad = dataset.bad_videos
    if bad:
        log.warning("%d video(s) could not be read and were skipped:\n%s", len(bad),
                    "\n".join(f"  {path}: {problem}" for path, problem in bad))


# ----------------------------------------------------------------------------- comparing configs

def resumable_keys() -> frozenset[str]:
    """``SECTION.KEY`` of the options a run may change when resumed (workers, device...)."""
    return frozenset(f.key for f in config_flags() if f.resumable)


def config_differences(saved: dict[str, Any], requested: dict[str, Any], *,
                       source: str = "saved config") -> list[str]:
    """``"model.name: a (saved) != b (requested)"`` for every key whose resolved value
    differs, ignoring :func:`resumable_keys`; both dicts are resolved over the defaults first."""
    old = _flat(config_from_dict(saved, source=source).to_dict())
    new = _flat(config_from_dict(requested).to_dict())
    ignored = resumable_keys()
    return [f"{key}: {old.get(key)} (saved) != {new.get(key)} (requested)"
            for key in sorted(old.keys() | new.keys())
            if key not in ignored and old.get(key) != new.get(key)]


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _differences_error(what: str, differences: list[str], advice: str) -> ValueError:
    return ValueError(f"{what}: " + "; ".join(differences) + f". {advice}")


def check_resumable(run_dir: str | Path) -> dict[str, Any]:
    """``run_dir/last.pt`` (loaded), after checking that its configuration is the one in the
    folder's ``config.yaml``: a checkpoint of another run is refused before anything is
    touched."""
    run_dir = Path(run_dir)
    last, saved = run_dir / "last.pt", run_dir / "config.yaml"
    ckpt = load_checkpoint(last)
    if saved.is_file():
        folder_cfg = load_config(saved).to_dict()
        differences = config_differences(folder_cfg, ckpt.get("config") or {},
                                         source=str(saved))
        if differences:
            raise _differences_error(
                f"{last} is not this run folder's checkpoint ({saved} differs; 'saved' is "
                "config.yaml, 'requested' the checkpoint)", differences,
                "Put back the run's own last.pt, or resume the checkpoint's own run folder")
    return ckpt


# ----------------------------------------------------------------------------- run folders

def run_status(run_dir: str | Path, epochs: int, config: TrainConfig | None = None
               ) -> RunStatus:
    """Whether ``run_dir`` holds no readable checkpoint, an unfinished or a finished run.

    With ``config``, the run must be the one asked for: the configuration saved in the folder
    (its ``last.pt``, else its ``config.yaml``) must equal ``config`` (resumable keys aside),
    else a ``ValueError`` names the differing keys; a ``last.pt`` that does not load is an
    error too, instead of ``"new"``.
    """
    run_dir = Path(run_dir)
    if config is not None:
        return _requested_run_status(run_dir, epochs, config)
    last = run_dir / "last.pt"
    if not last.is_file():
        return "new"
    try:
        done = int(load_checkpoint(last)["training_state"]["epoch"])
    except (ValueError, KeyError, TypeError):
        return "new"  # unreadable: start again
    return "finished" if done >= epochs else "unfinished"


def _requested_run_status(run_dir: Path, epochs: int, config: TrainConfig) -> RunStatus:
    last, saved = run_dir / "last.pt", run_dir / "config.yaml"
    ckpt = None
    if last.is_file():
        ckpt = check_resumable(run_dir)
        source, stored = str(last), ckpt.get("config") or {}
    elif saved.is_file():
        source, stored = str(saved), load_config(saved).to_dict()
    else:
        return "new"
    differences = config_differences(stored, derived(config).to_dict(), source=source)
    if differences:
        raise _differences_error(f"{run_dir} holds another run ({source})", differences,
                                 "Give another --out, or move the folder away")
    if ckpt is None:
        return "new"
    state = ckpt.get("training_state")
    if not state:
        raise ValueError(f"{last}: holds no training state to resume from")
    return "finished" if int(state["epoch"]) >= epochs else "unfinished"


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


def claim_run_dir(run_dir: str | Path, *, overwrite: bool = False) -> Path | None:
    """Make ``run_dir`` ready for a new run: stale checkpoint temp files (a write killed midway)
    are removed; a folder still holding files is refused, or with ``overwrite`` its files are
    moved into ``run_dir/previous-<time>/`` (returned; nothing is deleted)."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise FileExistsError(f"{run_dir}: exists and is not a folder; choose another --out")
    for path in remove_stale_temp_files(run_dir):
        log.info("removed %s, a checkpoint write that never finished", path)
    entries = _run_files(run_dir)
    if not entries:
        return None
    if not overwrite:
        names = ", ".join(p.name for p in entries[:6]) + (", ..." if len(entries) > 6 else "")
        advice = (f"continue it with mict train --resume {run_dir}, "
                  if (run_dir / "last.pt").is_file() else "")
        raise FileExistsError(
            f"{run_dir} already holds a run ({names}): {advice}give --overwrite to move its "
            f"files into {run_dir}/{PREVIOUS}<time>/, or choose another --out")
    return move_aside(run_dir, entries)


def _run_files(run_dir: Path) -> list[Path]:
    """The entries of ``run_dir`` except moved-aside folders."""
    if not run_dir.is_dir():
        return []
    return sorted(p for p in run_dir.iterdir()
                  if not (p.is_dir() and p.name.startswith(PREVIOUS)))


def move_aside(run_dir: Path, entries: list[Path] | None = None) -> Path:
    """Move ``entries`` (default: every file of the run, after deleting the temp files of a
    checkpoint write that never finished) into a new ``previous-<time>`` folder of
    ``run_dir``; returns it."""
    if entries is None:
        for path in remove_stale_temp_files(run_dir):
            log.info("removed %s, a checkpoint write that never finished", path)
        entries = _run_files(run_dir)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = run_dir / f"{PREVIOUS}{stamp}"
    n = 1
    while target.exists():
        n += 1
        target = run_dir / f"{PREVIOUS}{stamp}-{n}"
    target.mkdir()
    for path in entries:
        path.rename(target / path.name)
    log.warning("moved the earlier files of %s into %s", run_dir, target)
    return target


def evaluate_checkpoint(checkpoint: str | Path, target: EvalDataConfig | None = None,
                        run: InferenceConfig | None = None, *, progress: bool = True
                        ) -> EvalReport:
    """Evaluate a checkpoint on ``target``'s test videos (each unset field: the training run's)
    as ``run`` says (device, precision, clips, batch)."""
    target = target or EvalDataConfig()
    run = run or InferenceConfig()
    model, meta = load_model(checkpoint)
    trained = config_from_dict(meta.config) if meta.config else TrainConfig()
    split = target.split
    changes = {k: v for k, v in (("dataset", target.dataset), ("root", target.root),
                                 ("split", split if isinstance(split, int) else None),
                                 ("splits_dir", target.splits_dir), ("strict", target.strict))
               if v is not None}
    if target.dataset in ("folder", "list") and target.root is not None:
        changes["test_root"] = target.root
    if (target.dataset is not None or target.root is not None) and meta.clip.modality == "rgb":
        changes["cache"] = None  # prepared frames belong to the training videos
    if target.dataset is not None and target.dataset != "list":
        changes["list_root"] = None  # the training list's folder
    clip = meta.clip  # the checkpoint's, whatever its training config's data fields say
    data = replace(trained.data, **changes)
    mode = target.mode
    frames = clip.frames if target.frames is None else target.frames
    whole = mode == "video" and frames == 0
    test = eval_dataset(data, mode=mode, frames=None if whole else frames, clips=run.clips,
                        split=split if isinstance(split, str) else None, clip=clip)
    if test is None:
        raise ValueError("a folder/list dataset needs --root pointing at the test videos")
    dev = resolve_device(run.device)
    source = {"checkpoint": str(checkpoint), "model": meta.spec.name, "dataset": data.dataset,
              "root": data.test_root if data.dataset in ("folder", "list") else data.root,
              "split": test.split if isinstance(test, Kinetics) else
              data.split if data.dataset in ("ucf101", "hmdb51") else None}
    report = evaluate_model(model.to(dev), test, meta.classes, mode=mode,
                            frames=None if whole else frames, clips=run.clips, source=source,
                            device=dev, batch_size=1 if whole else run.batch_size,
                            workers=run.workers, amp_dtype=resolve_amp(run.amp, dev),
                            progress=progress)
    if isinstance(test, Kinetics):
        report.skipped = test.skipped()
    return report


def save_report(report: EvalReport, out: str | Path) -> tuple[Path, Path | None]:
    """``report.json``, ``predictions.csv``, ``confusion.png`` (labelled videos only) and, for
    Kinetics, ``missing-<split>.csv`` in ``out``; returns the report's and the figure's paths."""
    from .plots import plot_confusion  # matplotlib only when a figure is drawn

    out = Path(out)
    if (out / "report.json").exists():
        log.info("replacing the report in %s", out)
    json_path = report.save_json(out / "report.json")
    report.save_predictions(out / PREDICTIONS_FILE)
    if report.source.get("dataset") == "kinetics":
        _write_skipped(report.skipped, len(report.skipped) + len(report.predictions),
                       report.source["split"], out, log)
    if report.metrics is None:
        (out / "confusion.png").unlink(missing_ok=True)  # an earlier report's
        return json_path, None
    title = f"{report.source.get('model', '')} - {report.summary().split(':')[0]}"
    png = plot_confusion(report.metrics.confusion, report.classes, out / "confusion.png", title)
    return json_path, png

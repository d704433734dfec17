"""Datasets for training and evaluation, built from a :class:`DataConfig`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..data import VideoDataset, build_dataset
from ..data.synthetic import read_metadata
from .train_config import DataConfig

EVAL_MODES = ("clip", "video")


def _root(cfg: DataConfig) -> str:
    if not cfg.root:
        raise ValueError("no dataset root: pass --root PATH (or set data.root)")
    return cfg.root


def _common(cfg: DataConfig) -> dict:
    return {"crop_size": cfg.crop_size, "resize": tuple(cfg.resize), "skip_bad": cfg.skip_bad,
            "cache": cfg.cache, "strict": cfg.strict}


def train_dataset(cfg: DataConfig) -> VideoDataset:
    """Training clips with the full augmentation (seeded per sample by the trainer)."""
    return build_dataset(cfg.dataset, _root(cfg), cfg.split, True, splits_dir=cfg.splits_dir,
                         list_root=cfg.list_root, frames=cfg.frames, mode="clip", flip=cfg.flip,
                         jitter=cfg.jitter, max_stride=cfg.max_stride, **_common(cfg))


def test_dataset(cfg: DataConfig) -> VideoDataset | None:
    """The published test protocol: the first ``frames`` frames, centre crop. ``None`` for a
    folder/list dataset without ``test_root``."""
    return eval_dataset(cfg, mode="clip", frames=cfg.frames)


def eval_dataset(cfg: DataConfig, *, mode: str = "clip", frames: int | None = 16,
                 clips: int = 1, split: str | None = None) -> VideoDataset | None:
    """Test videos: ``clip`` = the first ``frames`` frames; ``video`` = the first ``frames``
    frames (all of them for ``None``) or, with ``clips`` > 1, ``clips`` evenly spaced clips of
    ``frames`` frames whose scores are averaged. ``split`` names a Kinetics split (default
    ``val``)."""
    if mode not in EVAL_MODES:
        raise ValueError(f"unknown evaluation mode {mode!r}; choose one of {EVAL_MODES}")
    if clips < 1:
        raise ValueError(f"the number of clips must be positive, got {clips}")
    if mode == "clip" and frames is None:
        raise ValueError("clip mode needs a number of frames")
    if split is not None and cfg.dataset != "kinetics":
        raise ValueError(f"split names ({split!r}) are Kinetics splits; {cfg.dataset} splits are "
                         "numbered")
    if mode == "video" and clips > 1:
        if frames is None:
            raise ValueError("several clips per video need a clip length (--frames)")
        options = {"mode": "multiclip", "num_clips": clips, "frames": frames}
    else:
        options = {"mode": mode, "frames": frames}
    if cfg.dataset in ("folder", "list"):
        if not cfg.test_root:
            return None
        return build_dataset(cfg.dataset, cfg.test_root, train=False, list_root=cfg.list_root,
                             flip=False, **options, **_common(cfg))
    return build_dataset(cfg.dataset, _root(cfg), split or cfg.split, False,
                         splits_dir=cfg.splits_dir, list_root=cfg.list_root, flip=False,
                         **options, **_common(cfg))


def with_synthetic_flip(cfg: DataConfig) -> DataConfig:
    """On a synthetic dataset, mirror only the classes its ``synth.json`` calls flip-safe."""
    if cfg.flip is not True or not cfg.root:
        return cfg
    meta = read_metadata(Path(cfg.root).parent)
    if meta is None or "flip_safe" not in meta:
        return cfg
    return replace(cfg, flip=list(meta["flip_safe"]))

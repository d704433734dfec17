"""Datasets for training and evaluation, built from a :class:`DataConfig` and the model's
:class:`ClipSpec` (its transform: size, crop, mean and std; its test-time stride)."""

from __future__ import annotations

from dataclasses import replace

from ..data import VideoDataset, build_dataset
from ..data.clip_spec import ClipSpec
from .train_config import EVAL_MODES, DataConfig


def _root(cfg: DataConfig) -> str:
    if not cfg.root:
        raise ValueError("no dataset root: pass --root PATH (or set data.root)")
    return cfg.root


def _spec(cfg: DataConfig, clip: ClipSpec | None) -> ClipSpec:
    """``clip``, else the recipe's spec with the sizes ``cfg`` sets."""
    return clip or ClipSpec().with_data(cfg)


def _common(cfg: DataConfig) -> dict:
    return {"skip_bad": cfg.skip_bad, "cache": cfg.cache, "strict": cfg.strict}


def _modality(spec: ClipSpec) -> dict:
    return {"modality": spec.modality} if spec.modality != "rgb" else {}


def train_dataset(cfg: DataConfig, clip: ClipSpec | None = None) -> VideoDataset:
    """Training clips with the full augmentation at ``clip``'s size (seeded per sample by the
    trainer)."""
    spec = _spec(cfg, clip)
    return build_dataset(cfg.dataset, _root(cfg), cfg.split, True, splits_dir=cfg.splits_dir,
                         list_root=cfg.list_root, frames=spec.frames, mode="clip", flip=cfg.flip,
                         max_stride=cfg.max_stride,
                         transform=spec.train_transform(True, cfg.jitter), **_common(cfg),
                         **_modality(spec))


def test_dataset(cfg: DataConfig, clip: ClipSpec | None = None) -> VideoDataset | None:
    """The published test protocol: the first frames of a clip, centre crop. ``None`` for a
    folder/list dataset without ``test_root``."""
    spec = _spec(cfg, clip)
    return eval_dataset(cfg, mode="clip", frames=spec.frames, clip=spec)


def eval_dataset(cfg: DataConfig, *, mode: str = "clip", frames: int | None = 16,
                 clips: int = 1, split: str | None = None, clip: ClipSpec | None = None
                 ) -> VideoDataset | None:
    """Test videos: ``clip`` = the first ``frames`` frames; ``video`` = the first ``frames``
    frames (all of them for ``None``) or, with ``clips`` > 1, ``clips`` evenly spaced clips of
    ``frames`` frames whose scores are averaged, read and normalised as ``clip`` says.
    ``split`` names a Kinetics split (default ``val``)."""
    if mode not in EVAL_MODES:
        raise ValueError(f"unknown evaluation mode {mode!r}; choose one of {EVAL_MODES}")
    if clips < 1:
        raise ValueError(f"the number of clips must be positive, got {clips}")
    if mode == "clip" and clips > 1:
        raise ValueError(f"{clips} clips per video are scored in video mode (--mode video); "
                         "clip mode scores the first frames only, the published protocol")
    if mode == "clip" and frames is None:
        raise ValueError("clip mode needs a number of frames")
    if split is not None and cfg.dataset != "kinetics":
        raise ValueError(f"split names ({split!r}) are Kinetics splits; {cfg.dataset} splits are "
                         "numbered")
    spec = _spec(cfg, clip)
    if mode == "video" and clips > 1:
        if frames is None:
            raise ValueError("several clips per video need a clip length (--frames)")
        options = {"mode": "multiclip", "num_clips": clips, "frames": frames}
    else:
        options = {"mode": mode, "frames": frames}
    options |= {"stride": spec.stride, "transform": spec.eval_transform(), **_modality(spec)}
    if cfg.dataset in ("folder", "list"):
        if not cfg.test_root:
            return None
        return build_dataset(cfg.dataset, cfg.test_root, train=False, list_root=cfg.list_root,
                             flip=False, **options, **_common(cfg))
    return build_dataset(cfg.dataset, _root(cfg), split or cfg.split, False,
                         splits_dir=cfg.splits_dir, list_root=cfg.list_root, flip=False,
                         **options, **_common(cfg))


def training_videos(cfg: DataConfig, clip: ClipSpec) -> VideoDataset:
    """The training split's videos read as the test protocol reads them (the first frames,
    centre crop, no augmentation): what score fusion chooses its weights on, never the test
    split."""
    spec = _spec(cfg, clip)
    dataset = build_dataset(cfg.dataset, _root(cfg), cfg.split, True, splits_dir=cfg.splits_dir,
                            list_root=cfg.list_root, frames=spec.frames, mode="clip",
                            flip=False, stride=spec.stride, transform=spec.eval_transform(),
                            **_common(cfg), **_modality(spec))
    dataset.sampler = replace(dataset.sampler, train=False)  # the training list, test sampling
    dataset.train = False
    return dataset

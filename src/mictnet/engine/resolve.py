"""One configuration resolution for every command: preset → ``--config`` file → ``--set`` →
flags, then the derived rules, once.

The derived rules: the clip fields a configuration leaves unset (``data.frames``,
``data.crop_size``, ``data.resize``: ``None``) come from the model's registry row (its
:class:`~mictnet.data.clip_spec.ClipSpec`), and a synthetic dataset mirrors only the classes its
``synth.json`` calls flip-safe. :func:`resolve_config` also says where each clip field came
from (the model's row, the preset, the file, ``--set`` or a flag).
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from pathlib import Path

from ..data.clip_spec import CONFIG_KEYS, ClipSpec
from ..data.synthetic import read_metadata
from ..models import get_variant
from .config_flags import apply_flags, given_flags
from .presets import preset
from .train_config import DataConfig, TrainConfig, config_from_dict, load_config, parse_assignment

log = logging.getLogger("mictnet")

_DATA_FIELD = {spec: key.split(".")[1] for spec, key in CONFIG_KEYS.items()}


def model_clip_spec(model: str) -> ClipSpec:
    """The clip the registered ``model`` is made for (its registry row's)."""
    return ClipSpec.from_dict(dict(get_variant(model).clip))


def clip_spec(cfg: TrainConfig) -> ClipSpec:
    """The clip of a training configuration: the model's, with the data fields it sets."""
    return model_clip_spec(cfg.model.name).with_data(cfg.data)


def with_synthetic_flip(cfg: DataConfig) -> DataConfig:
    """On a synthetic dataset, mirror only the classes its ``synth.json`` calls flip-safe."""
    if cfg.flip is not True or not cfg.root:
        return cfg
    meta = read_metadata(Path(cfg.root).parent)
    if meta is None or "flip_safe" not in meta:
        return cfg
    return replace(cfg, flip=list(meta["flip_safe"]))


def derived(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with the derived rules applied (idempotent): every clip field set (from the
    model's spec where unset), the synthetic flip rule and, for flow data, a model of 2 input
    channels (where ``model.in_channels`` is unset)."""
    spec = clip_spec(cfg)
    data = replace(cfg.data, **{name: getattr(spec, field)
                                for field, name in _DATA_FIELD.items()})
    model = cfg.model
    if cfg.data.modality == "flow" and model.in_channels is None:
        model = replace(model, in_channels=spec.in_channels)
    return replace(cfg, data=with_synthetic_flip(data), model=model)


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """The configuration of ``--preset``, ``--config``, ``--set`` and the flags given, in that
    order, with the derived rules; logs where each clip field came from (the trainer logs the
    clip itself)."""
    stages: list[tuple[str, TrainConfig]] = []
    cfg = preset(args.preset) if args.preset else TrainConfig()
    stages.append((f"preset {args.preset}" if args.preset else "default", cfg))
    if getattr(args, "config", None):
        cfg = load_config(args.config, cfg)
        stages.append((f"file {args.config}", cfg))
    for assignment in getattr(args, "set", None) or ():
        cfg = config_from_dict(parse_assignment(assignment), cfg, f"--set {assignment}")
        stages.append((f"--set {assignment}", cfg))
    for flag in given_flags(args):
        cfg = apply_flags(cfg, args, [flag])
        stages.append((flag.option, cfg))
    resolved = derived(cfg)
    log.info("clip fields from %s", ", ".join(
        f"{CONFIG_KEYS[f]}: {where}" for f, where in clip_sources(stages, cfg.model.name).items()))
    return resolved


def clip_sources(stages: list[tuple[str, TrainConfig]], model: str) -> dict[str, str]:
    """Clip field -> where its value came from: the last stage that changed it, else the
    model's row (for a field no stage set)."""
    sources = {}
    for field, name in _DATA_FIELD.items():
        where = f"{model} row"
        previous = None
        for stage, cfg in stages:
            value = getattr(cfg.data, name)
            if value is not None and value != previous:
                where = stage
            previous = value
        sources[field] = where
    return sources

"""Checkpoints that rebuild their model alone and survive crashes.

A checkpoint is a plain dict of tensors and Python primitives (loadable with
``weights_only=True``): the model's registry name, class count and options, the class names, the
input size, the resolved training config, the weights and, for resuming, the optimiser/scheduler/
scaler states, epoch, step and RNG states. Files are written atomically (temp file, fsync,
rename), so a crash leaves the previous complete checkpoint in place.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..models import ModelSpec, build_model

FORMAT_VERSION = 1


@dataclass
class CheckpointMeta:
    """What a checkpoint says about its model and data."""

    spec: ModelSpec
    classes: list[str]
    input_size: tuple[int, int, int]  # frames, height, width
    config: dict[str, Any] = field(default_factory=dict)
    epoch: int = 0
    step: int = 0
    metrics: dict[str, float] = field(default_factory=dict)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The bare model behind DDP / ``torch.compile`` wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temp file in the same folder, fsync it, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path: str | Path, model: nn.Module, meta: CheckpointMeta,
                    training_state: dict[str, Any] | None = None) -> None:
    """Write ``model`` (unwrapped, no ``module.`` prefixes), ``meta`` and optional resume state."""
    bare = unwrap_model(model)
    atomic_save({
        "format_version": FORMAT_VERSION,
        "model": {"name": meta.spec.name, "num_classes": meta.spec.num_classes,
                  "options": dict(meta.spec.options)},
        "classes": list(meta.classes),
        "input_size": list(meta.input_size),
        "config": meta.config,
        "epoch": meta.epoch,
        "step": meta.step,
        "metrics": meta.metrics,
        "state_dict": {k: v.detach().cpu() for k, v in bare.state_dict().items()},
        "training_state": training_state,
    }, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint dict safely (``weights_only=True``), with clear errors.

    ``path`` may be a run folder: its ``best.pt``, or ``last.pt`` when there is no ``best.pt``.
    """
    path = Path(path)
    if path.is_dir():  # a run folder: its best model, or its latest without a test set
        path = path / "best.pt" if (path / "best.pt").is_file() else path / "last.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path}: truncated or corrupt checkpoint ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "state_dict" not in ckpt:
        raise ValueError(f"{path}: not a mictnet checkpoint (no model description or weights)")
    if ckpt.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint format {ckpt['format_version']} is newer than "
                         f"this mictnet understands ({FORMAT_VERSION})")
    return ckpt


def checkpoint_meta(ckpt: dict[str, Any]) -> CheckpointMeta:
    m = ckpt["model"]
    return CheckpointMeta(
        spec=ModelSpec(m["name"], int(m["num_classes"]), dict(m["options"])),
        classes=list(ckpt["classes"]),
        input_size=tuple(ckpt["input_size"]),
        config=ckpt.get("config") or {},
        epoch=int(ckpt.get("epoch", 0)),
        step=int(ckpt.get("step", 0)),
        metrics=ckpt.get("metrics") or {},
    )


def load_weights(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Load weights into ``model``, naming the checkpoint when they do not fit."""
    state_dict = {k.removeprefix("module."): v for k, v in state_dict.items()}
    try:
        unwrap_model(model).load_state_dict(state_dict)
    except RuntimeError as err:
        first = str(err).splitlines()
        raise ValueError(f"{source}: weights do not fit {type(unwrap_model(model)).__name__}: "
                         + " ".join(s.strip() for s in first[:3])) from None


def load_model(path: str | Path, device: str | torch.device = "cpu"
               ) -> tuple[nn.Module, CheckpointMeta]:
    """Rebuild the checkpoint's model with its weights, in eval mode, on ``device``."""
    ckpt = load_checkpoint(path)
    meta = checkpoint_meta(ckpt)
    if len(meta.classes) != meta.spec.num_classes:
        raise ValueError(f"{path}: {len(meta.classes)} class names for a "
                         f"{meta.spec.num_classes}-class model")
    model = build_model(meta.spec.name, meta.spec.num_classes, **meta.spec.options)
    load_weights(model, ckpt["state_dict"], str(path))
    return model.to(device).eval(), meta

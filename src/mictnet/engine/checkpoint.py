"""Checkpoints that rebuild their model alone and survive crashes.

A checkpoint is a plain dict of tensors and Python primitives (loadable with
``weights_only=True``): the model's registry name, class count and options, the class names, the
input size, the resolved training config, the weights and, for resuming, the optimiser/scheduler/
scaler states, epoch, step and RNG states. Files are written atomically (temp file, fsync,
rename), so a crash leaves the previous complete checkpoint in place.
"""

from __future__ import annotations

import errno
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.clip_spec import ClipSpec
from ..models import ModelSpec, build_model
from ..models.weights import refused_import

FORMAT_VERSION = 2  # 2: the clip spec ("clip") instead of "input_size"
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since PyTorch 1.6
CHECKPOINT_NAMES = ("last.pt", "best.pt")  # the checkpoints of a run folder
_DISK_FULL_TEXT = ("unexpected pos", "No space left", "file write failed")  # torch's writer


class DiskFullError(OSError):
    """No space left while writing a checkpoint; the previous file is intact."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


@dataclass
class CheckpointMeta:
    """What a checkpoint says about its model and data. ``clip`` is the clip the model was
    trained on (its transform everywhere after); without one (checkpoints written before it
    was stored) it is derived from ``input_size`` and the training config's ``data.resize``."""

    spec: ModelSpec
    classes: list[str]
    input_size: tuple[int, int, int]  # frames, height, width
    config: dict[str, Any] = field(default_factory=dict)
    epoch: int = 0
    step: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    clip: ClipSpec | None = None

    def __post_init__(self) -> None:
        self.input_size = tuple(self.input_size)
        if self.clip is None:
            frames, height, width = self.input_size
            if height != width:
                raise ValueError(f"input size {height}x{width}: only square crops")
            data = self.config.get("data") if isinstance(self.config, dict) else None
            resize = data.get("resize") if isinstance(data, dict) else None
            self.clip = ClipSpec().overridden(frames=frames, crop=height, resize=resize)
        elif self.input_size != self.clip.input_size:
            raise ValueError(f"input size {self.input_size} is not the clip's "
                             f"{self.clip.input_size}")


def unwrap_model(model: nn.Module) -> nn.Module:
    """The bare model behind DDP / ``torch.compile`` wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def temp_name_prefix(path: Path) -> str:
    """The prefix of :func:`atomic_save`'s temp files for ``path`` (``.last.pt.``)."""
    return f".{path.name}."


def stale_temp_files(folder: str | Path, names: tuple[str, ...] = CHECKPOINT_NAMES
                     ) -> list[Path]:
    """Temp files :func:`atomic_save` left in ``folder`` for ``names`` (killed mid-write)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for name in names
                  for p in folder.glob(f"{temp_name_prefix(folder / name)}*.tmp") if p.is_file())


def remove_stale_temp_files(folder: str | Path) -> list[Path]:
    """Delete the checkpoint temp files a killed run left in ``folder``; returns them."""
    stale = stale_temp_files(folder)
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temp file in the same folder, fsync it, then rename over ``path``.

    A full disk raises :class:`DiskFullError` naming the file system and the file (``path``
    itself, if it existed, is left as it was)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_name_prefix(path), suffix=".tmp", dir=path.parent)
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
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if _is_disk_full(err):
            raise DiskFullError(errno.ENOSPC, _disk_full_message(path)) from err
        raise


def _is_disk_full(err: BaseException) -> bool:
    if isinstance(err, OSError):
        return err.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(err, RuntimeError) and any(t in str(err) for t in _DISK_FULL_TEXT)


def _disk_full_message(path: Path) -> str:
    previous = (f"the previous checkpoint {path} is intact" if path.is_file()
                else f"no earlier {path.name} existed")
    return f"no space left on {_mount_point(path)} while writing {path}; {previous}"


def _mount_point(path: Path) -> str:
    """The file system ``path`` is on: its mount point (and device, where /proc tells it)."""
    mount = path.resolve().parent
    while not os.path.ismount(mount) and mount != mount.parent:
        mount = mount.parent
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            devices = {line.split()[1]: line.split()[0] for line in f if len(line.split()) > 1}
    except OSError:
        devices = {}
    device = devices.get(str(mount))
    return f"{device} (mounted at {mount})" if device else f"the disk mounted at {mount}"


def save_checkpoint(path: str | Path, model: nn.Module, meta: CheckpointMeta,
                    training_state: dict[str, Any] | None = None) -> None:
    """Write ``model`` (unwrapped, no ``module.`` prefixes), ``meta`` and optional resume state."""
    bare = unwrap_model(model)
    atomic_save({
        "format_version": FORMAT_VERSION,
        "model": {"name": meta.spec.name, "num_classes": meta.spec.num_classes,
                  "options": dict(meta.spec.options)},
        "classes": list(meta.classes),
        "clip": meta.clip.to_dict(),
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
        raise ValueError(_load_error(path, err)) from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "state_dict" not in ckpt:
        raise ValueError(f"{path}: not a mictnet checkpoint (no model description or weights)")
    version = ckpt.get("format_version", 0)
    if not _is_int(version):
        raise ValueError(f"{path}: format_version must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint format {version} is newer than "
                         f"this mictnet understands ({FORMAT_VERSION})")
    problem = _field_problem(ckpt)
    if problem:
        raise ValueError(f"{path}: not a valid mictnet checkpoint: {problem}")
    return ckpt


MAX_SIDE = 8192  # pixels or frames: larger in a checkpoint's clip is a damaged or hostile file


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _field_problem(ckpt: dict[str, Any]) -> str | None:
    """What is wrong with the metadata fields of a checkpoint dict (``None``: nothing), so
    that a damaged or hand-made file is named by field, not by a traceback later."""
    m = ckpt["model"]
    if not isinstance(m, dict) or not isinstance(m.get("name"), str):
        return "model.name must be a string"
    if not _is_int(m.get("num_classes")) or m["num_classes"] < 1:
        return f"model.num_classes must be a positive integer, got {m.get('num_classes')!r}"
    options = m.get("options")
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        return "model.options must be a mapping of option names"
    classes = ckpt.get("classes")
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        return "classes must be a list of class names (strings)"
    if "clip" in ckpt:
        clip = ckpt["clip"]
        sizes = [clip.get(k) for k in ("frames", "crop")] + list(clip.get("resize") or []) \
            if isinstance(clip, dict) else [None]
        if not all(_is_int(v) and 0 < v <= MAX_SIDE for v in sizes):
            return f"clip sizes must be integers in 1..{MAX_SIDE}, got {clip!r}"
        try:
            ClipSpec.from_dict(clip)
        except (TypeError, ValueError) as err:
            return f"clip: {err}"
    else:
        size = ckpt.get("input_size")
        if not (isinstance(size, list | tuple) and len(size) == 3
                and all(_is_int(v) and 0 < v <= MAX_SIDE for v in size)):
            return f"input_size must be 3 integers in 1..{MAX_SIDE}, got {size!r}"
    for key in ("epoch", "step"):
        if not _is_int(ckpt.get(key, 0)):
            return f"{key} must be an integer, got {ckpt[key]!r}"
    if not isinstance(ckpt.get("config") or {}, dict) or not isinstance(
            ckpt.get("metrics") or {}, dict):
        return "config and metrics must be mappings"
    return None


def _load_error(path: Path, err: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused ``path``, without torch's advice to retry
    unsafely."""
    text = str(err)
    unsafe = refused_import(err)
    if unsafe:
        return (f"{path}: not a safe checkpoint: it asks to import {unsafe}; mictnet "
                "loads only tensors and plain values and will not unpickle arbitrary objects")
    with path.open("rb") as f:
        head = f.read(len(ZIP_MAGIC))
    if head == ZIP_MAGIC or not head:
        what = "empty file" if not head else text.split(". ")[0] or type(err).__name__
        return f"{path}: truncated or corrupt checkpoint ({what})"
    return (f"{path}: not a mictnet checkpoint (not a file written by torch.save with tensors "
            "and plain values); mictnet will not unpickle arbitrary objects")


def checkpoint_meta(ckpt: dict[str, Any]) -> CheckpointMeta:
    m = ckpt["model"]
    clip = ClipSpec.from_dict(ckpt["clip"]) if "clip" in ckpt else None
    return CheckpointMeta(
        spec=ModelSpec(m["name"], int(m["num_classes"]), dict(m["options"])),
        classes=list(ckpt["classes"]),
        input_size=clip.input_size if clip else tuple(ckpt["input_size"]),
        clip=clip,
        config=ckpt.get("config") or {},
        epoch=int(ckpt.get("epoch", 0)),
        step=int(ckpt.get("step", 0)),
        metrics=ckpt.get("metrics") or {},
    )


def unwrapped_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state_dict`` without the ``module.`` prefixes of a DistributedDataParallel wrapper."""
    return {k.removeprefix("module."): v for k, v in state_dict.items()}


def load_weights(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Load weights into ``model``, naming the checkpoint when they do not fit."""
    state_dict = unwrapped_state_dict(state_dict)
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
    try:
        model = build_model(meta.spec.name, meta.spec.num_classes, **meta.spec.options)
    except (TypeError, ValueError) as err:  # an unknown model or option: a newer mictnet's
        raise ValueError(f"{path}: cannot rebuild its model: {err}") from None
    load_weights(model, ckpt["state_dict"], str(path))
    return model.to(device).eval(), meta

"""Training configuration: typed dataclasses, the published presets, YAML load/save, overrides.

A configuration is resolved in this order, each step overriding the one before: the defaults
(the MiCT-ResNet-18 UCF-101 recipe without ImageNet weights), a preset (``--preset``), a YAML file
(``--config``, any subset of the sections), ``--set SECTION.KEY=VALUE`` pairs and the explicit
command-line flags. The resolved configuration is saved as ``config.yaml`` in the run folder and
inside every checkpoint (as a plain dict, so checkpoints load with ``weights_only=True``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

AmpMode = Literal["auto", "none", "bf16", "fp16"]


@dataclass
class ModelConfig:
    """Which network to train and how to initialise it."""

    name: str = "mict_resnet18"
    pretrained: str | None = None  # "imagenet", a torchvision-format state dict file, or None
    dropout: float = 0.5
    temporal_stride: int | None = None  # MiCT models only; None keeps the model's default (16)
    first_kernel_depth: int | None = None  # MiCT models only; None keeps the default (7)
    # BatchNorm normalises with its running statistics during training (eval mode), so that
    # gradient accumulation and data-parallel training give exactly the large-batch result.
    freeze_bn: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {self.dropout}")

    def options(self) -> dict[str, Any]:
        """Keyword options for :func:`mictnet.models.build_model` (without ``pretrained``)."""
        opts: dict[str, Any] = {"dropout": self.dropout}
        if self.temporal_stride is not None:
            opts["temporal_stride"] = self.temporal_stride
        if self.first_kernel_depth is not None:
            opts["first_kernel_depth"] = self.first_kernel_depth
        return opts


@dataclass
class DataConfig:
    """Which videos, which split, and how clips are sampled."""

    dataset: str = "ucf101"  # ucf101, hmdb51, folder, list
    root: str | None = None  # videos (folder) or the list file (list)
    test_root: str | None = None  # folder/list datasets: the test videos (none: no testing)
    split: int = 1
    splits_dir: str | None = None
    cache: str | None = None  # frames pre-decoded by `mict prepare` (faster loading)
    frames: int = 16
    crop_size: int = 160
    resize: tuple[int, int] = (256, 192)  # width, height before cropping
    # True: flip every class; False: none; a list: only these classes may be mirrored.
    flip: bool | list[str] = True
    jitter: float = 0.5  # colour, brightness and contrast factors drawn from [1 - j, 1 + j]
    max_stride: int = 4  # training clips down-sample time by a factor drawn from 1..max_stride
    skip_bad: bool = False
    workers: int = 4

    def __post_init__(self) -> None:
        if self.split not in (1, 2, 3):
            raise ValueError(f"data.split must be 1, 2 or 3, got {self.split}")
        for name in ("frames", "crop_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"data.{name} must be positive, got {getattr(self, name)}")
        if self.workers < 0:
            raise ValueError(f"data.workers must be >= 0, got {self.workers}")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError(f"data.jitter must be in [0, 1), got {self.jitter}")
        if self.max_stride < 1:
            raise ValueError(f"data.max_stride must be >= 1, got {self.max_stride}")


@dataclass
class OptimConfig:
    """Optimiser and batch. ``batch_size`` is global: clips per optimiser step, all processes."""

    name: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    decay_norm_and_bias: bool = True  # False: no weight decay on 1-D parameters (BN, biases)
    batch_size: int = 112
    # Clips per forward pass and process; smaller than batch_size / processes means gradient
    # accumulation. None: the whole per-process share of the batch in one pass.
    micro_batch_size: int | None = None
    label_smoothing: float = 0.0
    clip_grad_norm: float | None = None

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"optim.lr must be positive, got {self.lr}")
        if self.batch_size < 1:
            raise ValueError(f"optim.batch_size must be positive, got {self.batch_size}")
        if self.micro_batch_size is not None and self.micro_batch_size < 1:
            raise ValueError(f"optim.micro_batch_size must be positive, got "
                             f"{self.micro_batch_size}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"optim.label_smoothing must be in [0, 1), got "
                             f"{self.label_smoothing}")


@dataclass
class ScheduleConfig:
    """Learning-rate schedule, evaluated at every optimiser step (fractional epochs)."""

    epochs: int = 120
    kind: Literal["step", "cosine"] = "step"
    milestones: list[int] = field(default_factory=lambda: [80])  # step: lr × gamma after each
    gamma: float = 0.1
    warmup_epochs: float = 0.0  # linear warm-up from lr / 100

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"schedule.epochs must be positive, got {self.epochs}")
        if list(self.milestones) != sorted(self.milestones):
            raise ValueError(f"schedule.milestones must be increasing, got {self.milestones}")
        if self.warmup_epochs < 0:
            raise ValueError(f"schedule.warmup_epochs must be >= 0, got {self.warmup_epochs}")


@dataclass
class RuntimeConfig:
    """Where and how the run executes; none of this changes the result except ``seed``/``amp``."""

    seed: int = 0
    device: str = "auto"  # auto (CUDA when available), cpu, cuda, cuda:N
    # auto: CUDA bf16 where supported, else fp16; CPU bf16 where native and faster, else fp32
    amp: AmpMode = "auto"
    channels_last: bool = True  # CUDA only
    cudnn_benchmark: bool = True
    deterministic: bool = False
    threads: int | None = None  # torch CPU threads; None keeps torch's default
    eval_every: int = 1  # epochs
    checkpoint_epochs: int = 1  # last.pt after every N-th epoch (and the last); 0: the last only
    checkpoint_every: int = 0  # optimiser steps between mid-epoch checkpoints; 0: none
    checkpoint_minutes: float = 10.0  # also checkpoint when this much time passed; 0: never
    log_every: int = 10  # optimiser steps between TensorBoard points
    progress: bool = True
    tensorboard: bool = True

    def __post_init__(self) -> None:
        if self.eval_every < 1:
            raise ValueError(f"runtime.eval_every must be positive, got {self.eval_every}")
        if min(self.checkpoint_epochs, self.checkpoint_every, self.checkpoint_minutes) < 0:
            raise ValueError("runtime.checkpoint_epochs, checkpoint_every and "
                             "checkpoint_minutes must be >= 0")
        if self.log_every < 1:
            raise ValueError(f"runtime.log_every must be positive, got {self.log_every}")


@dataclass
class TrainConfig:
    """A whole training run."""

    preset: str | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (lists, no tuples) for YAML and checkpoints."""
        return _plain(asdict(self))


# ----------------------------------------------------------------------------- presets

def _mict18_ucf101() -> TrainConfig:
    return TrainConfig(
        preset="mict18-ucf101",
        model=ModelConfig("mict_resnet18", pretrained="imagenet", dropout=0.5),
        data=DataConfig("ucf101", frames=16, crop_size=160),
        optim=OptimConfig("sgd", lr=1e-2, momentum=0.9, weight_decay=5e-4, batch_size=112),
        schedule=ScheduleConfig(epochs=120, kind="step", milestones=[80], gamma=0.1),
    )


def _r3d18_ucf101() -> TrainConfig:
    cfg = _mict18_ucf101()
    return dataclasses.replace(
        cfg, preset="r3d18-ucf101",
        model=ModelConfig("resnet3d_18", pretrained="imagenet", dropout=0.5),
        schedule=ScheduleConfig(epochs=90, kind="step", milestones=[40, 80], gamma=0.1),
    )


def _ucf101_long(preset: str, model: str, dropout: float, batch_size: int) -> TrainConfig:
    """The long-video recipe: temporal stride 4, more dropout, smaller batches."""
    cfg = _mict18_ucf101()
    return dataclasses.replace(
        cfg, preset=preset,
        model=ModelConfig(model, pretrained="imagenet", dropout=dropout, temporal_stride=4),
        optim=dataclasses.replace(cfg.optim, batch_size=batch_size),
    )


def _demo() -> TrainConfig:
    """``mict demo``: MiCT-ResNet-18 from scratch on the synthetic motion dataset, 2 CPU cores.

    Loading a 64×64 clip costs 2-5 ms against ~40 ms for its training step, so the main process
    loads the data (no worker) and torch uses every core; the test split is scored every second
    epoch."""
    return TrainConfig(
        preset="demo",
        model=ModelConfig("mict_resnet18", pretrained=None, dropout=0.2),
        data=DataConfig("ucf101", frames=16, crop_size=64, resize=(64, 64), jitter=0.0,
                        max_stride=1, workers=0),
        optim=OptimConfig("adamw", lr=2e-3, weight_decay=0.05, decay_norm_and_bias=False,
                          batch_size=16),
        schedule=ScheduleConfig(epochs=6, kind="cosine", milestones=[], warmup_epochs=0.9),
        runtime=RuntimeConfig(amp="auto", threads=None, eval_every=2, checkpoint_epochs=0,
                              checkpoint_minutes=2.0),
    )


def _demo_fp32() -> TrainConfig:
    """``mict demo`` where the CPU has no native bf16: 48×48 clips and 5 epochs (half the work)."""
    cfg = _demo()
    return dataclasses.replace(
        cfg, preset="demo-fp32",
        data=dataclasses.replace(cfg.data, crop_size=48, resize=(48, 48)),
        schedule=dataclasses.replace(cfg.schedule, epochs=5),
    )


def _demo_quick() -> TrainConfig:
    """``mict demo --quick``: the demo recipe, shorter, on smaller clips (under two minutes)."""
    cfg = _demo()
    return dataclasses.replace(
        cfg, preset="demo-quick",
        data=dataclasses.replace(cfg.data, crop_size=32, resize=(32, 32)),
        schedule=dataclasses.replace(cfg.schedule, epochs=8, warmup_epochs=0.5),
    )


PRESETS: dict[str, typing.Callable[[], TrainConfig]] = {
    "mict18-ucf101": _mict18_ucf101,
    "r3d18-ucf101": _r3d18_ucf101,
    "mict18-ucf101-long": lambda: _ucf101_long("mict18-ucf101-long", "mict_resnet18", 0.6, 96),
    "mict34-ucf101-long": lambda: _ucf101_long("mict34-ucf101-long", "mict_resnet34", 0.7, 80),
    "demo": _demo,
    "demo-fp32": _demo_fp32,
    "demo-quick": _demo_quick,
}


def list_presets() -> list[str]:
    return list(PRESETS)


def preset(name: str) -> TrainConfig:
    """A fresh copy of a named preset."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]()


# ----------------------------------------------------------------------------- dicts and YAML

def config_from_dict(data: dict[str, Any], base: TrainConfig | None = None,
                     source: str = "config") -> TrainConfig:
    """``base`` (default: the defaults) with every key of the nested dict ``data`` applied.

    Unknown keys and values of the wrong type are errors naming ``source`` and the key.
    """
    base = base if base is not None else TrainConfig()
    return _update(base, data, source, "")


def load_config(path: str | Path, base: TrainConfig | None = None) -> TrainConfig:
    """Read a YAML file (any subset of the sections) over ``base``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"{path}{where}: not valid YAML ({getattr(err, 'problem', err)})"
                         ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return config_from_dict(data, base, str(path))


def save_config(config: TrainConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")


def parse_assignment(text: str) -> dict[str, Any]:
    """``"optim.lr=0.1"`` -> ``{"optim": {"lr": 0.1}}`` (the value is parsed as YAML)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"expected SECTION.KEY=VALUE, got {text!r}")
    out: dict[str, Any] = {}
    node = out
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = yaml.safe_load(value) if value.strip() else None
    return out


def merge_dicts(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Nested dict ``a`` updated by ``b``."""
    out = dict(a)
    for k, v in b.items():
        out[k] = merge_dicts(out[k], v) if isinstance(v, dict) and isinstance(out.get(k),
                                                                                dict) else v
    return out


def _update(obj: Any, data: dict[str, Any], source: str, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{source}: {prefix.rstrip('.') or 'config'} must be a mapping, "
                         f"got {data!r}")
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    changes: dict[str, Any] = {}
    for key, value in data.items():
        where = f"{prefix}{key}"
        if key not in names:
            raise ValueError(f"{source}: unknown key {where!r} (known: "
                             f"{', '.join(prefix + n for n in sorted(names))})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            changes[key] = _update(current, value, source, where + ".")
        else:
            changes[key] = _coerce(value, hints[key], source, where)
    try:
        return dataclasses.replace(obj, **changes)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{source}: {err}") from None


def _coerce(value: Any, tp: Any, source: str, where: str) -> Any:
    """``value`` checked against the annotation ``tp`` (and converted where lossless)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arm in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arm, source, where)
            except ValueError as err:
                errors.append(str(err))
        raise ValueError(errors[-1] if len(errors) == 1 else
                         f"{source}: {where} = {value!r} is not {_type_name(tp)}")
    if origin is Literal:
        if value not in args:
            raise ValueError(f"{source}: {where} must be one of "
                             f"{', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ValueError(f"{source}: {where} must be a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ValueError(f"{source}: {where} must have {len(args)} items, got {value!r}")
            return tuple(_coerce(v, a, source, where) for v, a in zip(value, args, strict=True))
        item = args[0] if args else Any
        items = [_coerce(v, item, source, where) for v in value]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{source}: {where} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{source}: {where} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML reads "1e-2" as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{source}: {where} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ValueError(f"{source}: {where} must be a string, got {value!r}")
        return value
    return value


def _type_name(tp: Any) -> str:
    return str(tp).replace("typing.", "")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value

"""The training configuration schema: typed dataclasses, one field per option, and its
dict/YAML conversion.

Every option is one dataclass field declared with :func:`option`: its default, a ``help`` line
and, where a short command-line flag exists, its ``flag`` name. That one declaration is the YAML
key, the ``--set SECTION.KEY=VALUE`` key, the command-line flag (:mod:`.config_flags`), its
``--help`` line and the key in the saved ``config.yaml``.

A configuration is resolved in this order, each step overriding the one before: the defaults
(the MiCT-ResNet-18 UCF-101 recipe without ImageNet weights), a preset (``--preset``,
:mod:`.presets`), a YAML file (``--config``, any subset of the sections), ``--set`` pairs and the
explicit command-line flags. The resolved configuration is saved as ``config.yaml`` in the run
folder and inside every checkpoint (as a plain dict, so checkpoints load with
``weights_only=True``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import types
import typing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from ..data.catalog import DATASETS
from ..data.kinetics import SPLITS as KINETICS_SPLITS
from ..data.sampling import MAX_CLIPS
from ..models.weights import SOURCES
from .arg_types import clip_count, non_negative_int, positive_int, test_split
from .precision import AMP_MODES

AmpMode = Literal[AMP_MODES]  # type: ignore[valid-type]
DatasetName = Literal[DATASETS]  # type: ignore[valid-type]
EVAL_MODES = ("clip", "video")
EvalMode = Literal[EVAL_MODES]  # type: ignore[valid-type]


def path_value(text: str) -> str:
    """A path given on the command line, made absolute."""
    return str(Path(text).resolve())


def weights_value(text: str) -> str | None:
    """``--pretrained``: a source (``imagenet``, ``kinetics400``), a weights file (made absolute)
    or ``none``."""
    if text.lower() == "none":
        return None
    return text if text in SOURCES else path_value(text)


def option(default: Any, help: str, *, flag: str | None = None, metavar: str | None = None,
           parse: typing.Callable[[str], Any] | None = None, resumable: bool = False) -> Any:
    """A configuration field: ``default``, its ``help`` line and, where it has one, the short
    command-line ``flag`` (``parse`` converts its text, ``metavar`` names it; ``resumable``: it
    may change on ``mict train --resume``). Lists are copied per instance."""
    meta = {"help": help, "flag": flag, "metavar": metavar, "parse": parse,
            "resumable": resumable}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def section(factory: type, help: str) -> Any:
    """A nested section of the configuration."""
    return dataclasses.field(default_factory=factory, metadata={"help": help})


@dataclass
class ModelConfig:
    """Which network to train and how to initialise it."""

    name: str = option("mict_resnet18", "registered model name (see: mict models)",
                       flag="model", metavar="NAME")
    pretrained: str | None = option(
        None, "initial weights: imagenet, kinetics400 (torchvision's video ResNets), a weights "
              "file of that layout, or none", flag="pretrained",
        metavar="imagenet|kinetics400|FILE|none", parse=weights_value)
    dropout: float = option(0.5, "dropout before the classifier, in [0, 1)", flag="dropout")
    temporal_stride: Literal[4, 16] | None = option(
        None, "MiCT models only: temporal stride (none: the model's default, 16)",
        flag="temporal-stride")
    first_kernel_depth: int | None = option(
        None, "MiCT models only: frames seen by the entrance's 3D kernel (none: 7)")
    freeze_bn: bool = option(
        False, "BatchNorm normalises with its running statistics during training, so gradient "
               "accumulation and data-parallel training give exactly the large-batch result")
    init_from: str | None = option(
        None, "start from another run's checkpoint (e.g. RUN/best.pt) trained on other classes: "
              "every tensor whose name and shape fit is copied, the classifier starts fresh "
              "(replaces --pretrained)", flag="init-from", metavar="CHECKPOINT", parse=path_value)
    in_channels: int | None = option(
        None, "input channels (none: from data.modality, 3 for rgb, 2 for flow)")
    freeze_until: Literal["stem", "layer1", "layer2", "layer3", "layer4"] | None = option(
        None, "no gradients for the entrance and the stages up to this one; their BatchNorms "
              "keep their running statistics", flag="freeze-until")

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
        if self.in_channels is not None:
            opts["in_channels"] = self.in_channels
        return opts


@dataclass
class DataConfig:
    """Which videos, which split, and how clips are sampled."""

    dataset: DatasetName = option("ucf101", "dataset layout", flag="dataset")
    root: str | None = option(None, "dataset root (videos, or the list file)", flag="root",
                              metavar="PATH", parse=path_value)
    test_root: str | None = option(
        None, "folder/list datasets: the test videos (none: no testing)", flag="test-root",
        metavar="PATH", parse=path_value)
    list_root: str | None = option(
        None, "folder the videos of a --dataset list file lie under; relative paths are "
              "relative to it, absolute ones must lie in it (default: the list's folder)",
        flag="list-root", metavar="DIR", parse=path_value)
    split: Literal[1, 2, 3] = option(1, "official split (ucf101, hmdb51)", flag="split")
    splits_dir: str | None = option(None, "folder of the official split files", flag="splits",
                                    metavar="DIR", parse=path_value)
    cache: str | None = option(None, "frames pre-decoded by mict prepare (faster loading)",
                               flag="cache", metavar="DIR", parse=path_value)
    modality: Literal["rgb", "flow", "both"] = option(
        "rgb", "rgb frames, or flow: the optical flow mict prepare --flow wrote to --cache (the "
               "model takes 2 input channels); both: mict crossval trains an rgb and a flow run "
               "per split and fuses their scores", flag="modality")
    frames: int | None = option(None, "frames per clip (none: the model's clip spec)",
                                flag="frames")
    crop_size: int | None = option(None, "crop side in pixels (none: the model's clip spec)",
                                   flag="crop-size")
    resize: tuple[int, int] | None = option(
        None, "width, height before cropping (none: the model's clip spec)")
    flip: bool | list[str] = option(
        True, "horizontal flips: true for every class, false for none, or a list of the "
              "classes that may be mirrored")
    jitter: float = option(0.5, "colour, brightness and contrast factors drawn from "
                                "[1 - jitter, 1 + jitter]")
    max_stride: int = option(4, "training clips down-sample time by a factor drawn from "
                                "1..max_stride")
    skip_bad: bool = option(False, "skip unreadable videos (reported at the end)")
    strict: bool = option(
        False, "kinetics: a listed video that is missing or unreadable is an error naming its "
               "CSV line, instead of being skipped and listed in RUN/missing-<split>.csv (the "
               "other datasets are always strict about missing videos)", flag="strict")
    workers: int = option(4, "data-loading processes per training process", flag="workers",
                          resumable=True)

    def __post_init__(self) -> None:
        for name in ("frames", "crop_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
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

    name: Literal["sgd", "adamw"] = option("sgd", "optimiser")
    lr: float = option(0.01, "peak learning rate", flag="lr")
    momentum: float = option(0.9, "SGD momentum", flag="momentum")
    nesterov: bool = option(False, "SGD with Nesterov momentum")
    weight_decay: float = option(5e-4, "weight decay", flag="weight-decay")
    decay_norm_and_bias: bool = option(True, "false: no weight decay on 1-D parameters "
                                             "(BatchNorm, biases)")
    batch_size: int = option(112, "clips per optimiser step, all processes", flag="batch-size")
    micro_batch_size: int | None = option(
        None, "clips per forward pass and process; smaller than batch_size / processes means "
              "gradient accumulation (none: the whole share in one pass)",
        flag="micro-batch-size")
    label_smoothing: float = option(0.0, "label smoothing of the cross-entropy, in [0, 1)")
    clip_grad_norm: float | None = option(None, "clip the gradient norm to this (none: no "
                                                "clipping)")
    backbone_lr_mult: float = option(1.0, "learning-rate factor of every parameter but the "
                                          "classifier's (fc.*), in (0, 1]",
                                     flag="backbone-lr-mult")

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
        if not 0.0 < self.backbone_lr_mult <= 1.0:
            raise ValueError(f"optim.backbone_lr_mult must be in (0, 1], got "
                             f"{self.backbone_lr_mult}")


@dataclass
class ScheduleConfig:
    """Learning-rate schedule, evaluated at every optimiser step (fractional epochs)."""

    epochs: int = option(120, "training epochs", flag="epochs")
    kind: Literal["step", "cosine"] = option("step", "learning-rate schedule")
    milestones: list[int] = option([80], "step: epochs after which the lr is multiplied by "
                                         "gamma")
    gamma: float = option(0.1, "step: lr factor at each milestone")
    warmup_epochs: float = option(0.0, "linear warm-up from lr / 100 over this many epochs")

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

    seed: int = option(0, "seed of the weights, the data order and the augmentation",
                       flag="seed")
    device: str = option("auto", "auto (CUDA when available), cpu, cuda or cuda:N",
                         flag="device", metavar="DEVICE", resumable=True)
    amp: AmpMode = option("auto", "mixed precision; auto: CUDA bf16 where supported, else "
                                  "fp16; CPU bf16 where native and faster, else fp32",
                          flag="amp")
    channels_last: bool = option(True, "channels-last memory format (CUDA only)")
    cudnn_benchmark: bool = option(True, "cuDNN autotuning (CUDA only)")
    deterministic: bool = option(False, "deterministic algorithms (slower)",
                                 flag="deterministic")
    threads: int | None = option(None, "torch CPU threads (none: torch's default)")
    eval_every: int = option(1, "epochs between test evaluations (and the last)")
    checkpoint_epochs: int = option(1, "last.pt after every N-th epoch and the last; 0: the "
                                       "last only")
    checkpoint_every: int = option(0, "optimiser steps between mid-epoch checkpoints; 0: none")
    checkpoint_minutes: float = option(10.0, "also checkpoint when this much time passed; "
                                             "0: never")
    keep_resume: bool = option(False, "a finished run's last.pt keeps its optimiser, scheduler "
                                      "and RNG state (twice the weights' size); default: dropped "
                                      "at the end, as nothing resumes a finished run",
                               flag="keep-resume", resumable=True)
    save_best: bool = option(True, "write best.pt at each new best test top-1 (false: only "
                                   "last.pt, for runs used only for their final weights)",
                             resumable=True)
    log_every: int = option(10, "optimiser steps between TensorBoard points")
    progress: bool = option(True, "progress bars", flag="no-progress", resumable=True)
    tensorboard: bool = option(True, "TensorBoard event files in the run folder")

    def __post_init__(self) -> None:
        if self.eval_every < 1:
            raise ValueError(f"runtime.eval_every must be positive, got {self.eval_every}")
        if min(self.checkpoint_epochs, self.checkpoint_every, self.checkpoint_minutes) < 0:
            raise ValueError("runtime.checkpoint_epochs, checkpoint_every and "
                             "checkpoint_minutes must be >= 0")
        if self.log_every < 1:
            raise ValueError(f"runtime.log_every must be positive, got {self.log_every}")


@dataclass
class InferenceConfig:
    """How a trained model is run: ``mict evaluate``, ``sweep``, ``predict`` and ``serve`` take
    these as flags (:func:`~.config_flags.add_section_flags`), help and defaults from here."""

    device: str = option("auto", "auto (CUDA when available), cpu, cuda or cuda:N",
                         flag="device", metavar="DEVICE")
    amp: AmpMode = option("auto", "mixed precision; auto: bf16/fp16 on CUDA, bf16 on a CPU that "
                                  "runs it natively, else fp32", flag="amp")
    clips: int = option(1, f"up to this many clips per video (at most {MAX_CLIPS}), evenly "
                           "spaced (no more than it holds), their scores averaged; evaluate: in "
                           "--mode video", flag="clips", parse=clip_count)
    batch_size: int = option(8, "clips per forward pass", flag="batch-size", parse=positive_int)
    workers: int = option(2, "data-loading processes (0: in this process)", flag="workers",
                          parse=non_negative_int)

    def __post_init__(self) -> None:
        for name in ("clips", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got "
                                 f"{getattr(self, name)}")
        if self.clips > MAX_CLIPS:
            raise ValueError(f"--clips is at most {MAX_CLIPS}, got {self.clips}")
        if self.workers < 0:
            raise ValueError(f"--workers must be >= 0, got {self.workers}")


def _like(cls: type, name: str, default: Any, unset: str) -> Any:
    """A field of another section with the help and flag of ``cls.name``; ``unset`` says what
    its ``None`` default means."""
    meta = {f.name: f for f in dataclasses.fields(cls)}[name].metadata
    return option(default, f"{meta['help']} (default: {unset})", flag=meta["flag"],
                  metavar=meta["metavar"], parse=meta["parse"])


@dataclass(frozen=True)
class EvalDataConfig:
    """Which test videos ``mict evaluate`` and ``mict sweep`` score a checkpoint on, and how;
    an unset (``None``) field is the checkpoint's training value."""

    dataset: DatasetName | None = _like(DataConfig, "dataset", None,
                                        "the checkpoint's training dataset")
    root: str | None = _like(DataConfig, "root", None, "the checkpoint's training root")
    splits_dir: str | None = _like(DataConfig, "splits_dir", None, "found beside the root")
    split: int | str | None = option(
        None, f"ucf101, hmdb51: the official split (1, 2, 3); kinetics: the CSV "
              f"({', '.join(KINETICS_SPLITS)}) (default: the checkpoint's training split; "
              f"kinetics: val)", flag="split", metavar="SPLIT", parse=test_split)
    mode: EvalMode = option(
        "clip", "clip: the first --frames frames, centre crop (the published protocol); video: "
                "the first --frames frames (0: all) or --clips clips averaged", flag="mode")
    frames: int | None = option(None, "frames per clip (default: the training length; video "
                                      "mode: 0 = all)", flag="frames", metavar="N",
                                parse=non_negative_int)
    strict: bool | None = option(
        None, "kinetics: a missing or unreadable video is an error (default: the training "
              "run's data.strict; else they are skipped and listed in missing-<split>.csv "
              "beside the report)", flag="strict")

    def __post_init__(self) -> None:
        if self.split is not None:
            try:
                test_split(str(self.split))
            except argparse.ArgumentTypeError as e:
                raise ValueError(f"split: {e}") from None


@dataclass
class TrainConfig:
    """A whole training run."""

    preset: str | None = option(None, "the preset this configuration started from")
    model: ModelConfig = section(ModelConfig, "the network")
    data: DataConfig = section(DataConfig, "videos, split and clip sampling")
    optim: OptimConfig = section(OptimConfig, "optimiser and batch")
    schedule: ScheduleConfig = section(ScheduleConfig, "learning-rate schedule")
    runtime: RuntimeConfig = section(RuntimeConfig, "device, precision, checkpoints, logging")

    def inference(self) -> InferenceConfig:
        """How this run's checkpoints are evaluated: its device, precision and loader workers."""
        return InferenceConfig(device=self.runtime.device, amp=self.runtime.amp,
                               workers=self.data.workers)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (lists, no tuples) for YAML and checkpoints."""
        return _plain(asdict(self))


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


def config_yaml(config: TrainConfig) -> str:
    """The configuration as ``config.yaml`` holds it."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)


def save_config(config: TrainConfig, path: str | Path) -> None:
    Path(path).write_text(config_yaml(config), encoding="utf-8")


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
    try:
        node[parts[-1]] = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError as err:
        raise ValueError(f"{text!r}: the value is not valid YAML "
                         f"({getattr(err, 'problem', None) or type(err).__name__})") from None
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
        if value not in args or isinstance(value, bool) != isinstance(args[0], bool):
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
            with contextlib.suppress(ValueError):
                value = float(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{source}: {where} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{source}: {where} must be a finite number, got {value!r}")
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

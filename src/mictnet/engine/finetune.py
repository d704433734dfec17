"""Fine-tuning from another run: copy the tensors that fit, freeze early stages.

``--init-from RUN/best.pt`` copies every tensor of a mictnet checkpoint whose name and shape fit
the new model; the classifier (``fc.*``) always starts fresh, so a checkpoint trained on other
classes (Kinetics, a synthetic source) initialises a UCF-101 run. ``--freeze-until STAGE`` stops
the gradients of the entrance (``stem``: every module before ``layer1``) and of the stages up to
``STAGE``; their BatchNorms keep their running statistics (eval mode) during training.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..models.weights import CLASSIFIER_PREFIX
from .checkpoint import load_checkpoint, unwrapped_state_dict
from .runlog import log

STAGES = ("stem", "layer1", "layer2", "layer3", "layer4")
MIN_FIT = 0.5  # of another architecture's tensors, the share that must fit


@dataclass
class InitReport:
    """Which tensors ``--init-from`` copied, left fresh (the classifier, new keys) or skipped."""

    source: str
    copied: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # same name, other shape

    def summary(self) -> str:
        return (f"init from {self.source}: copied {len(self.copied)} tensors, fresh "
                f"{len(self.fresh)} ({_names(self.fresh)}), skipped {len(self.skipped)} with "
                f"other shapes ({_names(self.skipped)})")


def _names(keys: list[str], shown: int = 4) -> str:
    more = f", ... {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more if keys else "none"


def init_from_checkpoint(model: nn.Module, path: str, model_name: str) -> InitReport:
    """Copy every tensor of the checkpoint ``path`` whose name and shape fit ``model`` (a
    ``model_name``), except the classifier; log and return the report.

    A checkpoint of another model where fewer than half of its tensors fit is a ``ValueError``.
    """
    ckpt = load_checkpoint(path)
    source = unwrapped_state_dict(ckpt["state_dict"])
    report = InitReport(path)
    target = model.state_dict()
    copy = {}
    for key, dst in target.items():
        src = source.get(key)
        if src is None or key.startswith(CLASSIFIER_PREFIX):
            report.fresh.append(key)
        elif src.shape != dst.shape:
            report.skipped.append(key)
        else:
            copy[key] = src.to(dst.dtype)
            report.copied.append(key)
    source_name = ckpt["model"]["name"]
    backbone = [k for k in source if not k.startswith(CLASSIFIER_PREFIX)]
    if source_name != model_name and len(copy) < MIN_FIT * max(len(backbone), 1):
        raise ValueError(f"{path}: a {source_name} checkpoint cannot initialise {model_name}: "
                         f"only {len(copy)} of its {len(backbone)} tensors fit")
    model.load_state_dict(copy, strict=False)
    log.info(report.summary())
    return report


def stage_of(name: str) -> int | None:
    """The index in :data:`STAGES` of the top-level module ``name`` (``None``: the classifier)."""
    if name == CLASSIFIER_PREFIX.rstrip("."):
        return None
    return STAGES.index(name) if name in STAGES[1:] else 0


def frozen_modules(model: nn.Module, until: str) -> list[nn.Module]:
    """The top-level modules of ``model`` from the entrance up to and including stage ``until``."""
    children = dict(model.named_children())
    if not set(STAGES[1:]) <= set(children):
        raise ValueError(f"--freeze-until {until}: {type(model).__name__} has no ResNet stages "
                         f"({', '.join(STAGES)}) to freeze")
    last = STAGES.index(until)
    return [m for name, m in children.items()
            if (stage := stage_of(name)) is not None and stage <= last]


def freeze_until(model: nn.Module, until: str) -> int:
    """Stop the gradients of the stages up to ``until``; returns how many parameters froze."""
    count = 0
    for module in frozen_modules(model, until):
        for p in module.parameters():
            p.requires_grad_(False)
            count += p.numel()
    log.info("frozen up to %s: %.2fM parameters", until, count / 1e6)
    return count


def batch_norms_eval(modules: list[nn.Module]) -> None:
    """Put every BatchNorm inside ``modules`` in eval mode (their running statistics stay)."""
    for module in modules:
        for m in module.modules():
            if isinstance(m, _BatchNorm):
                m.eval()

"""The training loop: accumulation, AMP, DDP, resumable checkpoints and the run folder.

One :class:`Trainer` runs one configuration in one run folder. It resumes from ``last.pt`` at the
optimiser-step boundary where the checkpoint was taken, with the model, optimiser, scheduler,
AMP scaler, epoch, step, the epoch's running sums, the metric history and every RNG state of
every process; with the seeded per-epoch data order (:mod:`.batching`) the resumed run replays
the rest of the epoch exactly. SIGTERM or a first Ctrl-C finish the current step, write
``last.pt`` and stop; a second Ctrl-C stops at once.

A run that finishes writes its last ``last.pt`` without the resume-only state (optimiser,
scheduler, AMP scaler, RNG: :data:`RESUME_ONLY`) unless ``runtime.keep_resume``: the final
weights, metrics and history stay, at about a third of the size.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from ..models import build_model, to_channels_last
from ..models.weights import CLASSIFIER_PREFIX
from . import distributed as D
from .batching import Loaders
from .checkpoint import (
    CheckpointMeta,
    load_checkpoint,
    load_weights,
    remove_stale_temp_files,
    save_checkpoint,
)
from .distributed import resolve_device
from .evaluate import test_metrics
from .finetune import batch_norms_eval, freeze_until, frozen_modules, init_from_checkpoint
from .metrics import topk_correct
from .precision import autocast, resolve_precision
from .resolve import clip_spec, derived
from .rng import capture_rng_state, restore_rng_state, seed_everything
from .runlog import RunLog, epoch_line, format_seconds, log, summary_lines, write_metrics_csv
from .schedule import build_scheduler
from .stop import StopRequest
from .train_config import ModelConfig, OptimConfig, RuntimeConfig, TrainConfig, save_config

RESUME_ONLY = ("optimizer", "scheduler", "scaler", "rng")  # last.pt's state only a resume reads


class NonFiniteLossError(RuntimeError):
    """The loss or the weights became NaN/inf; the run stopped without overwriting checkpoints."""


@dataclass
class TrainResult:
    """How a run ended."""

    run_dir: Path
    epochs_done: int
    global_step: int
    best_top1: float | None
    best_epoch: int | None
    last: dict[str, Any] | None  # the last epoch's metrics record
    seconds: float  # this session's wall time
    interrupted: bool


def configure_runtime(rt: RuntimeConfig, device: torch.device) -> None:
    """Threads, cuDNN autotuning and deterministic algorithms."""
    if rt.threads:
        torch.set_num_threads(rt.threads)
    if rt.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = rt.cudnn_benchmark and not rt.deterministic
        torch.backends.cudnn.deterministic = rt.deterministic


def build_configured_model(cfg: ModelConfig, num_classes: int, *, pretrained: bool = True
                           ) -> nn.Module:
    """The configured model, its stages frozen up to ``freeze_until``; ``pretrained=False``
    skips loading weights (a resume loads its own). ``init_from`` replaces ``pretrained``."""
    options = cfg.options()
    if pretrained and cfg.pretrained and not cfg.init_from:
        options["pretrained"] = cfg.pretrained
    try:
        model = build_model(cfg.name, num_classes, **options)
    except TypeError as err:
        raise ValueError(f"model options: {err}") from None
    if pretrained and cfg.init_from:
        if cfg.pretrained:
            log.info("--init-from %s replaces the %s weights", cfg.init_from, cfg.pretrained)
        init_from_checkpoint(model, cfg.init_from, cfg.name)
    if cfg.freeze_until:
        freeze_until(model, cfg.freeze_until)
    return model


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """SGD or AdamW over the trainable parameters; the backbone's (all but ``fc.*``) learning
    rate is ``lr × backbone_lr_mult``, and 1-D ones skip weight decay unless
    ``decay_norm_and_bias``."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    parts = [(cfg.lr, [p for _, p in named])]  # mult 1: the one group of before
    if cfg.backbone_lr_mult != 1.0:
        parts = [(cfg.lr * cfg.backbone_lr_mult,
                  [p for n, p in named if not n.startswith(CLASSIFIER_PREFIX)]),
                 (cfg.lr, [p for n, p in named if n.startswith(CLASSIFIER_PREFIX)])]
    groups = []
    for lr, params in parts:
        if cfg.decay_norm_and_bias:
            groups.append({"params": params, "lr": lr, "weight_decay": cfg.weight_decay})
        else:
            groups += [{"params": [p for p in params if p.ndim > 1], "lr": lr,
                        "weight_decay": cfg.weight_decay},
                       {"params": [p for p in params if p.ndim <= 1], "lr": lr,
                        "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    return torch.optim.AdamW(groups, lr=cfg.lr)


class Trainer:
    """Trains ``config`` on ``loaders`` (:func:`~.batching.build_loaders`) in ``run_dir``.

    Datasets yield ``(clip 3×T×H×W float, label int)``; ``classes`` names the labels. Launched by
    ``torchrun``, every process builds its own loaders and Trainer with the same arguments; the
    first Trainer joins the process group, which stays up for further runs until
    :func:`~.distributed.cleanup_distributed`.
    """

    def __init__(self, config: TrainConfig, run_dir: str | Path, loaders: Loaders,
                 classes: list[str], *, resume: bool = False) -> None:
        config = derived(config)  # the model's clip where the config leaves it unset
        self.cfg = config
        self.run_dir = Path(run_dir)
        self.classes = list(classes)
        rt = config.runtime
        self.dist = D.env_dist_info()
        self.device = resolve_device(rt.device, self.dist.local_rank)
        D.init_distributed(self.device)
        configure_runtime(rt, self.device)
        self.precision = resolve_precision(rt.amp, self.device)
        self.amp_dtype = self.precision.dtype
        self.channels_last = rt.channels_last and self.device.type == "cuda"
        self.is_main = self.dist.is_main

        self.sampler = loaders.sampler
        self.train_loader, self.test_loader = loaders.train, loaders.test
        self.micro_batch, self.accumulation = loaders.micro_batch, loaders.accumulation
        self.steps_per_epoch = self.sampler.steps_per_epoch

        seed_everything(rt.seed)  # the same initial weights in every process
        model = build_configured_model(config.model, len(self.classes), pretrained=not resume)
        model.to(self.device)
        if self.channels_last:
            to_channels_last(model)
        self.model = model
        self.net: nn.Module = model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(model, device_ids=ids)

        self.optimizer = build_optimizer(model, config.optim)
        self.scheduler = build_scheduler(self.optimizer, config.schedule, self.steps_per_epoch)
        self.scaler = torch.amp.GradScaler(self.device.type,
                                           enabled=self.amp_dtype == torch.float16)

        self.epoch = 0
        self.step_in_epoch = 0
        self.global_step = 0
        self.epoch_sums = [0.0, 0.0, 0.0]  # loss sum, correct, clips of the running epoch
        self.epoch_seconds = 0.0
        self.data_seconds = 0.0  # of epoch_seconds, waiting for the loader's next batch
        self.history: list[dict[str, Any]] = []
        self.best_top1: float | None = None
        self.best_epoch: int | None = None
        self.stop = StopRequest(announce=self.is_main)
        self.last_save = time.monotonic()

        seed_everything(rt.seed + self.dist.rank)  # dropout streams differ between processes
        if self.is_main:
            for path in remove_stale_temp_files(self.run_dir):
                log.info("removed %s, a checkpoint write that never finished", path)
        if resume:
            self._load_state(self.run_dir / "last.pt")
        elif self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(config, self.run_dir / "config.yaml")
        D.barrier()
        self.runlog = RunLog(self.run_dir, enabled=self.is_main, tensorboard=rt.tensorboard,
                             purge_step=self.global_step if resume else None)

    # ------------------------------------------------------------------------- public

    def fit(self) -> TrainResult:
        """Train to the configured number of epochs (or until stopped); return the outcome."""
        start = time.monotonic()
        epochs = self.cfg.schedule.epochs
        interrupted = False
        try:
            with self.stop, logging_redirect_tqdm():
                self._announce()
                if self.history and self.is_main:
                    write_metrics_csv(self.run_dir / "metrics.csv", self.history)
                while self.epoch < epochs and not interrupted:
                    interrupted = not self._train_epoch()
                    if not interrupted:
                        self._finish_epoch()
                result = TrainResult(self.run_dir, self.epoch, self.global_step, self.best_top1,
                                     self.best_epoch, self.history[-1] if self.history else None,
                                     time.monotonic() - start, interrupted)
                if self.is_main:
                    self._summary(result)
        finally:
            self.runlog.close()
        return result

    # ------------------------------------------------------------------------- epochs

    def _train_epoch(self) -> bool:
        """Run the rest of the current epoch; False when stopped by a signal."""
        self.sampler.set_epoch(self.epoch)
        self.sampler.set_start_step(self.step_in_epoch)
        self._set_train_mode()
        batches = iter(self.train_loader)
        epochs = self.cfg.schedule.epochs
        bar = tqdm(total=self.steps_per_epoch, initial=self.step_in_epoch, unit="step",
                   desc=f"epoch {self.epoch + 1}/{epochs}", leave=False, dynamic_ncols=True,
                   disable=not (self.is_main and self.cfg.runtime.progress))
        t0 = time.monotonic()
        steps_done = 0
        seconds_before = self.epoch_seconds
        try:
            while self.step_in_epoch < self.steps_per_epoch:
                boundary_rng = capture_rng_state()
                try:
                    step_stats = self._forward_backward(batches)
                except (RuntimeError, OSError):
                    if self.stop.requested and not self.dist.enabled:
                        # a Ctrl-C also stops the loader's workers; the weights are untouched
                        self._save_last(rng=boundary_rng)
                        return False
                    raise
                flags = self._step_flags()
                totals = D.all_reduce_sum(torch.cat([step_stats, flags.to(step_stats)]).double())
                loss_sum, correct, count, nonfinite, save_due, stop = totals.tolist()
                if nonfinite:
                    raise NonFiniteLossError(self._nonfinite_message(loss_sum / max(count, 1)))
                self._optimizer_step()
                self.global_step += 1
                self.step_in_epoch += 1
                for i, v in enumerate((loss_sum, correct, count)):
                    self.epoch_sums[i] += v
                steps_done += 1
                self.epoch_seconds = seconds_before + time.monotonic() - t0
                self._progress(bar, steps_done, t0, count)
                if self.global_step % self.cfg.runtime.log_every == 0:
                    self.runlog.scalar("loss/train_step", loss_sum / count, self.global_step)
                    self.runlog.scalar("lr", self._lr(), self.global_step)
                if stop:
                    self._save_last()
                    return False
                if save_due and (self.step_in_epoch < self.steps_per_epoch
                                 or not self._epoch_end_save_due()):
                    self._save_last()
        finally:
            bar.close()
        return True

    def _forward_backward(self, batches: Iterator) -> torch.Tensor:
        """One optimiser step's micro-batches: gradients accumulated, ``[loss sum, correct,
        clips, non-finite]`` of this process returned."""
        self.optimizer.zero_grad(set_to_none=True)
        stats = torch.zeros(4, device=self.device)
        for i in range(self.accumulation):
            start = time.monotonic()
            clips, labels = next(batches)
            self.data_seconds += time.monotonic() - start
            clips = clips.to(self.device, non_blocking=True,
                             memory_format=(torch.channels_last_3d if self.channels_last
                                            else torch.preserve_format))
            labels = labels.to(self.device, non_blocking=True)
            last = i == self.accumulation - 1
            sync = nullcontext() if last or not self.dist.enabled else self.net.no_sync()
            with sync:
                with autocast(self.device, self.amp_dtype):
                    logits = self.net(clips)
                loss = F.cross_entropy(logits.float(), labels,
                                       label_smoothing=self.cfg.optim.label_smoothing)
                self.scaler.scale(loss / self.accumulation).backward()
            n = labels.numel()
            detached = loss.detach()
            stats[0] += detached * n
            stats[1] += topk_correct(logits.detach(), labels, (1,))[0]
            stats[2] += n
            stats[3] += (~torch.isfinite(detached)).float()
        return stats

    def _epoch_end_save_due(self) -> bool:
        """Whether the epoch ending now (or at this step) is followed by a ``last.pt``."""
        every = self.cfg.runtime.checkpoint_epochs
        ending = self.epoch + (self.step_in_epoch == self.steps_per_epoch)
        return ending == self.cfg.schedule.epochs or bool(every) and ending % every == 0

    def _step_flags(self) -> torch.Tensor:
        """``[save due, stop requested]`` of this process (the main process keeps the clock)."""
        rt = self.cfg.runtime
        save_due = bool(rt.checkpoint_every) and (self.global_step + 1) % rt.checkpoint_every == 0
        if self.is_main and rt.checkpoint_minutes:
            save_due |= time.monotonic() - self.last_save >= rt.checkpoint_minutes * 60
        return torch.tensor([float(save_due), float(self.stop.requested)])

    def _optimizer_step(self) -> None:
        clip = self.cfg.optim.clip_grad_norm
        if clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()

    def _finish_epoch(self) -> None:
        loss_sum, correct, count = self.epoch_sums
        epochs = self.cfg.schedule.epochs
        self.epoch += 1
        evaluate = self.test_loader is not None and (
            self.epoch % self.cfg.runtime.eval_every == 0 or self.epoch == epochs)
        test = self._evaluate() if evaluate else {}
        record = {
            "epoch": self.epoch, "step": self.global_step, "lr": self._lr(),
            "train_loss": loss_sum / count, "train_top1": correct / count,
            "test_loss": test.get("loss"), "test_top1": test.get("top1"),
            "test_top5": test.get("top5"), "epoch_seconds": round(self.epoch_seconds, 3),
            "clips_per_s": round(count / max(self.epoch_seconds, 1e-9), 2),
            "data_wait": round(self.data_seconds / max(self.epoch_seconds, 1e-9), 4),
        }
        self.history.append(record)
        self.step_in_epoch = 0
        self.epoch_sums = [0.0, 0.0, 0.0]
        self.epoch_seconds = self.data_seconds = 0.0
        top1 = record["test_top1"]
        if top1 is not None and (self.best_top1 is None or top1 > self.best_top1):
            self.best_top1, self.best_epoch = top1, self.epoch
            self._check_weights_finite()
            if self.is_main and self.cfg.runtime.save_best:
                save_checkpoint(self.run_dir / "best.pt", self.model, self._meta(record))
        if self._epoch_end_save_due():
            self._save_last(resumable=self.epoch < epochs or self.cfg.runtime.keep_resume)
        self.runlog.epoch(record, self.history)
        if self.is_main:
            log.info(epoch_line(record, self.cfg.schedule.epochs))

    def _evaluate(self) -> dict[str, float]:
        """Test loss, top-1 and top-5 over the whole test set (all processes together)."""
        self.net.eval()
        D.broadcast_buffers(self.model)  # every process evaluates the main process's model
        metrics = test_metrics(self.model, self.test_loader, device=self.device,
                               amp_dtype=self.amp_dtype, channels_last=self.channels_last,
                               progress=self.is_main and self.cfg.runtime.progress)
        self._set_train_mode()
        return metrics

    # ------------------------------------------------------------------------- checkpoints

    def _meta(self, record: dict[str, Any] | None) -> CheckpointMeta:
        clip = clip_spec(self.cfg)
        metrics = {k: float(v) for k, v in (record or {}).items() if v is not None}
        return CheckpointMeta(self.model.spec, self.classes, clip.input_size,
                              self.cfg.to_dict(), self.epoch, self.global_step, metrics, clip)

    def _save_last(self, rng: dict[str, Any] | None = None, resumable: bool = True) -> None:
        """Write ``last.pt`` at the current step boundary (collective under DDP); without
        ``resumable``, without the :data:`RESUME_ONLY` state (a finished run)."""
        self._check_weights_finite()
        rng_states = D.all_gather_objects(rng if rng is not None else capture_rng_state())
        if self.is_main:
            state = {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "epoch": self.epoch,
                "step_in_epoch": self.step_in_epoch,
                "global_step": self.global_step,
                "epoch_sums": list(self.epoch_sums),
                "epoch_seconds": self.epoch_seconds,
                "data_seconds": self.data_seconds,
                "history": self.history,
                "best_top1": self.best_top1,
                "best_epoch": self.best_epoch,
                "world_size": self.dist.world_size,
                "rng": rng_states,
            }
            if not resumable:
                state = {k: v for k, v in state.items() if k not in RESUME_ONLY}
            record = self.history[-1] if self.history else None
            save_checkpoint(self.run_dir / "last.pt", self.model, self._meta(record), state)
        self.last_save = time.monotonic()

    def _load_state(self, path: Path) -> None:
        ckpt = load_checkpoint(path)
        state = ckpt.get("training_state")
        if not state:
            raise ValueError(f"{path}: holds no training state to resume from")
        name = ckpt["model"]["name"]
        if name != self.cfg.model.name:
            raise ValueError(f"{path}: a {name} checkpoint, but the config trains "
                             f"{self.cfg.model.name}")
        if list(ckpt["classes"]) != self.classes:
            raise ValueError(f"{path}: the checkpoint's {len(ckpt['classes'])} classes differ "
                             f"from the dataset's {len(self.classes)}")
        load_weights(self.model, ckpt["state_dict"], str(path))
        self._restore_counters(state)
        if "optimizer" not in state:  # a finished run kept without it: nothing left to train
            if self.epoch < self.cfg.schedule.epochs:
                raise ValueError(f"{path}: a finished run's checkpoint without optimiser "
                                 "state (runtime.keep_resume was off): it cannot train further")
            return
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])

    def _restore_counters(self, state: dict[str, Any]) -> None:
        """Epoch, steps, running sums, history and every process's RNG from ``state``."""
        self.epoch = int(state["epoch"])
        self.step_in_epoch = int(state["step_in_epoch"])
        self.global_step = int(state["global_step"])
        self.epoch_sums = [float(v) for v in state["epoch_sums"]]
        self.epoch_seconds = float(state["epoch_seconds"])
        self.data_seconds = float(state.get("data_seconds", 0.0))  # older checkpoints: none
        self.history = list(state["history"])
        self.best_top1 = state["best_top1"]
        self.best_epoch = state["best_epoch"]
        if "rng" not in state:
            return
        if int(state["world_size"]) == self.dist.world_size:
            restore_rng_state(state["rng"][self.dist.rank])
        else:
            log.warning("resuming with %d processes a run checkpointed with %d: the data order "
                        "is kept, random augmentation/dropout streams are reseeded",
                        self.dist.world_size, state["world_size"])
            seed_everything(self.cfg.runtime.seed + self.global_step * 1000 + self.dist.rank)

    def _check_weights_finite(self) -> None:
        for name, p in self.model.named_parameters():
            if not torch.isfinite(p).all():
                raise NonFiniteLossError(
                    f"weight {name} became NaN/inf at epoch {self.epoch + 1}, step "
                    f"{self.step_in_epoch}; {self._last_good()}")

    def _nonfinite_message(self, loss: float) -> str:
        return (f"the loss became {loss} at epoch {self.epoch + 1}, step "
                f"{self.step_in_epoch + 1}: training stopped. {self._last_good()} "
                "Try a lower --lr, --set optim.clip_grad_norm=..., or another --amp mode.")

    def _last_good(self) -> str:
        last = self.run_dir / "last.pt"
        if not last.is_file():
            return "No checkpoint was written yet."
        return (f"The last good checkpoint is kept: {last} "
                f"(resume with: mict train --resume {self.run_dir}).")

    # ------------------------------------------------------------------------- helpers

    def _set_train_mode(self) -> None:
        self.net.train()
        cfg = self.cfg.model
        if cfg.freeze_bn:
            batch_norms_eval([self.model])
        elif cfg.freeze_until:
            batch_norms_eval(frozen_modules(self.model, cfg.freeze_until))

    def _lr(self) -> float:
        """The classifier's (the highest) learning rate now."""
        return max(float(g["lr"]) for g in self.optimizer.param_groups)

    def _progress(self, bar: tqdm, steps_done: int, t0: float, clips: float) -> None:
        if bar.disable:
            return
        loss_sum, correct, count = self.epoch_sums
        elapsed = time.monotonic() - t0
        per_step = elapsed / steps_done
        remaining = ((self.cfg.schedule.epochs - self.epoch) * self.steps_per_epoch
                     - self.step_in_epoch)
        bar.set_postfix(loss=f"{loss_sum / count:.3f}", acc=f"{correct / count:.1%}",
                        clips_s=f"{steps_done * clips / elapsed:.1f}",
                        eta=format_seconds(remaining * per_step), refresh=False)
        bar.update(1)

    def _announce(self) -> None:
        if not self.is_main:
            return
        cfg = self.cfg
        what = "resuming" if self.global_step else "training"
        log.info("%s %s on %d classes in %s: %s, %d process(es), batch %d = %d x %d micro x %d "
                 "accumulation, %d steps/epoch, precision %s", what, cfg.model.name,
                 len(self.classes),
                 self.run_dir, self.device, self.dist.world_size, cfg.optim.batch_size,
                 self.dist.world_size, self.micro_batch, self.accumulation, self.steps_per_epoch,
                 self.precision.reason)
        log.info("clip %s", clip_spec(cfg).describe())
        if self.global_step:
            log.info("from epoch %d, step %d of %d (global step %d)", self.epoch + 1,
                     self.step_in_epoch, self.steps_per_epoch, self.global_step)

    def _summary(self, result: TrainResult) -> None:
        for line in summary_lines(result, self.cfg.schedule.epochs, self.run_dir,
                                  self.cfg.runtime.tensorboard, self.cfg.runtime.keep_resume):
            log.info(line)

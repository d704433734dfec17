"""Checkpoints: round trip, weights_only-safe training state, clear errors on bad files."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import pytest
import torch

from mictnet.engine import checkpoint as checkpoint_module
from mictnet.engine.batching import build_loaders
from mictnet.engine.checkpoint import (
    CheckpointMeta,
    DiskFullError,
    load_checkpoint,
    load_model,
    remove_stale_temp_files,
    save_checkpoint,
)
from mictnet.engine.train import Trainer
from mictnet.models import build_model
from tiny_clips import MovingSquares, tiny_config

CLASSES = ["right", "left", "down", "up"]


def tiny_model(num_classes: int = 4):
    torch.manual_seed(0)
    return build_model("tiny_video_net", num_classes, dropout=0.1)


def save_tiny(path: Path, model=None, classes=CLASSES) -> torch.nn.Module:
    model = model if model is not None else tiny_model(len(classes))
    save_checkpoint(path, model, CheckpointMeta(model.spec, list(classes), (8, 32, 32),
                                                {"note": "test"}, epoch=3, step=30,
                                                metrics={"test_top1": 0.5}))
    return model


def test_round_trip_rebuilds_model_and_meta(tmp_path: Path) -> None:
    model = save_tiny(tmp_path / "a.pt")
    loaded, meta = load_model(tmp_path / "a.pt")
    assert meta.spec.name == "tiny_video_net" and meta.spec.options == {"dropout": 0.1}
    assert meta.classes == CLASSES and meta.input_size == (8, 32, 32)
    assert (meta.epoch, meta.step, meta.metrics, meta.config) == (3, 30, {"test_top1": 0.5},
                                                                  {"note": "test"})
    assert not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


@pytest.mark.slow
def test_training_checkpoint_loads_with_weights_only(tmp_path: Path) -> None:
    cfg = tiny_config(schedule={"epochs": 1, "milestones": []}, optim={"batch_size": 4})
    train = MovingSquares(8, seed=0)
    test = MovingSquares(4, seed=1)
    Trainer(cfg, tmp_path / "run", build_loaders(cfg, train, test), train.classes).fit()
    for name in ("last.pt", "best.pt"):
        ckpt = torch.load(tmp_path / "run" / name, weights_only=True)  # no unsafe pickles
        assert ckpt["config"]["model"]["name"] == "tiny_video_net"
    state = load_checkpoint(tmp_path / "run" / "last.pt")["training_state"]
    assert "history" in state and not {"optimizer", "scheduler", "scaler", "rng"} & set(state)
    assert state["epoch"] == 1 and state["global_step"] == 2
    model, meta = load_model(tmp_path / "run")  # a run folder means its best.pt
    assert meta.classes == train.classes and meta.input_size == (8, 32, 32)
    (tmp_path / "run" / "best.pt").unlink()  # e.g. trained without a test set
    assert load_checkpoint(tmp_path / "run")["training_state"] is not None  # then last.pt


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        load_model(tmp_path / "nothing.pt")


@pytest.mark.parametrize("damage", ["truncate", "empty"])
def test_truncated_or_corrupt_file(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "a.pt"
    save_tiny(path)
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "empty": b""}[damage])
    with pytest.raises(ValueError, match=r"a\.pt: truncated or corrupt checkpoint"):
        load_model(path)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo unpickled",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("content", ["random", "garbage", "text", "malicious", "pickle"])
def test_foreign_or_malicious_file_is_refused_without_unsafe_advice(tmp_path: Path,
                                                                    content: str) -> None:
    import pickle

    buffer = io.BytesIO()
    torch.save({"model": _Evil(), "state_dict": {}}, buffer)
    data = {"random": os.urandom(4096), "garbage": b"\x00junk" * 100,
            "text": b"hello world\n" * 20, "malicious": buffer.getvalue(),
            "pickle": pickle.dumps(_Evil())}[content]
    path = tmp_path / "a.pt"
    path.write_bytes(data)
    with pytest.raises(ValueError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "weights_only" not in message and "Re-running" not in message
    assert "will not unpickle arbitrary objects" in message and "truncated" not in message
    expected = "not a safe checkpoint" if content == "malicious" else "not a mictnet checkpoint"
    assert message.startswith(f"{path}: ") and expected in message


@pytest.mark.parametrize("failure", [
    OSError(errno.ENOSPC, "No space left on device"),
    RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 128 vs 64"),
])
def test_disk_full_names_the_device_and_keeps_the_previous_checkpoint(
        tmp_path: Path, monkeypatch, failure: Exception) -> None:
    path = tmp_path / "last.pt"
    save_tiny(path)
    before = path.read_bytes()

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise failure

    monkeypatch.setattr(checkpoint_module.torch, "save", full_disk)
    with pytest.raises(DiskFullError) as info:
        save_tiny(path)
    message = str(info.value)
    assert message.startswith("no space left on ") and "mounted at" in message
    assert f"while writing {path}; the previous checkpoint {path} is intact" in message
    assert "enforce fail" not in message and "Errno" not in message
    assert path.read_bytes() == before and not list(tmp_path.glob(".*.tmp"))


def test_stale_temp_files_of_killed_writes_are_removed(tmp_path: Path) -> None:
    stale = [tmp_path / ".last.pt.abc123.tmp", tmp_path / ".best.pt.x.tmp"]
    kept = [tmp_path / "last.pt", tmp_path / ".other.pt.x.tmp", tmp_path / "notes.tmp"]
    for p in stale + kept:
        p.write_bytes(b"x")
    assert remove_stale_temp_files(tmp_path) == sorted(stale)
    assert all(p.exists() for p in kept) and not any(p.exists() for p in stale)


def test_plain_state_dict_is_not_a_checkpoint(tmp_path: Path) -> None:
    torch.save(tiny_model().state_dict(), tmp_path / "weights.pt")
    with pytest.raises(ValueError, match="not a mictnet checkpoint"):
        load_model(tmp_path / "weights.pt")


def test_weights_of_another_model(tmp_path: Path) -> None:
    path = tmp_path / "a.pt"
    save_tiny(path)
    ckpt = torch.load(path, weights_only=True)
    ckpt["model"] = {"name": "resnet2d_18", "num_classes": 4, "options": {}}
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match=r"a\.pt: weights do not fit ResNet2d"):
        load_model(path)


def test_wrong_class_count(tmp_path: Path) -> None:
    path = tmp_path / "a.pt"
    save_tiny(path)
    ckpt = torch.load(path, weights_only=True)
    ckpt["classes"] = CLASSES[:3]
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match="3 class names for a 4-class model"):
        load_model(path)
    ckpt["classes"] = CLASSES + ["still"]
    ckpt["model"]["num_classes"] = 5  # the classifier holds 4 rows
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match="weights do not fit"):
        load_model(path)


def test_ddp_module_prefix_loads(tmp_path: Path) -> None:
    path = tmp_path / "a.pt"
    model = save_tiny(path)
    ckpt = torch.load(path, weights_only=True)
    ckpt["state_dict"] = {f"module.{k}": v for k, v in ckpt["state_dict"].items()}
    torch.save(ckpt, path)
    loaded, _ = load_model(path)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def test_save_unwraps_ddp_like_wrappers(tmp_path: Path) -> None:
    class Wrapper(torch.nn.Module):  # what DistributedDataParallel looks like from outside
        def __init__(self, module: torch.nn.Module) -> None:
            super().__init__()
            self.module = module

    model = tiny_model()
    save_checkpoint(tmp_path / "a.pt", Wrapper(model),
                    CheckpointMeta(model.spec, CLASSES, (8, 32, 32)))
    keys = torch.load(tmp_path / "a.pt", weights_only=True)["state_dict"].keys()
    assert keys == model.state_dict().keys()


@pytest.mark.parametrize(("field", "value", "message"), [
    ("format_version", "2", "format_version must be an integer"),
    ("classes", [1, 2, 3], "classes must be a list of class names"),
    ("model", {"name": "tiny_video_net", "num_classes": "4", "options": {}},
     "model.num_classes must be a positive integer"),
    ("model", {"name": "tiny_video_net", "num_classes": 4, "options": {"warp_drive": 9}},
     "cannot rebuild its model: tiny_video_net has no option"),
    ("clip", {"frames": 8, "stride": 1, "resize": [10**6, 10**6], "crop": 10**6,
              "mean": [0.5] * 3, "std": [0.2] * 3}, "clip sizes must be integers in 1..8192"),
    ("clip", {"frames": 8, "crop": 32, "resize": [40, 40], "crop_pct": 0.9},
     "clip: unknown clip spec field"),
    ("epoch", "seven", "epoch must be an integer"),
])
def test_a_checkpoint_with_a_bad_field_is_named_by_that_field(tmp_path: Path, field: str,
                                                              value, message: str) -> None:
    path = tmp_path / "a.pt"
    save_tiny(path)
    ckpt = torch.load(path, weights_only=True)
    ckpt[field] = value
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match=message) as info:
        load_model(path)
    assert str(info.value).startswith(f"{path}: ")


@pytest.mark.slow
def test_a_finished_run_keeps_its_weights_without_the_optimiser_state(tmp_path: Path,
                                                                      caplog) -> None:
    """The last epoch's last.pt drops what only a resume reads (unless runtime.keep_resume);
    every earlier one keeps it; the run says what it kept; resuming the finished run is a no-op
    that still works."""
    train, test = MovingSquares(8, seed=0), MovingSquares(4, seed=1)
    sizes, states = {}, {}
    for keep in (False, True):
        cfg = tiny_config(schedule={"epochs": 2, "milestones": []}, optim={"batch_size": 4},
                          runtime={"keep_resume": keep, "checkpoint_epochs": 1})
        run = tmp_path / f"keep-{keep}"
        trainer = Trainer(cfg, run, build_loaders(cfg, train, test), train.classes)
        trainer.fit()
        sizes[keep] = (run / "last.pt").stat().st_size
        states[keep] = load_checkpoint(run / "last.pt")["training_state"]
    assert {"optimizer", "scheduler", "scaler", "rng"} <= set(states[True])
    assert not {"optimizer", "scheduler", "scaler", "rng"} & set(states[False])
    losses = {k: [r["train_loss"] for r in state["history"]] for k, state in states.items()}
    assert losses[False] == losses[True] and len(losses[False]) == states[False]["epoch"] == 2
    assert sizes[False] < 0.75 * sizes[True]  # SGD momentum: one more copy of the weights
    assert "optimiser state is dropped, --keep-resume keeps it" in caplog.text
    assert "disk: last.pt " in caplog.text and "; the folder " in caplog.text

    cfg = tiny_config(schedule={"epochs": 2, "milestones": []}, optim={"batch_size": 4})
    run = tmp_path / "keep-False"
    before = load_checkpoint(run / "last.pt")["state_dict"]
    result = Trainer(cfg, run, build_loaders(cfg, train, test), train.classes,
                     resume=True).fit()
    assert result.epochs_done == 2 and not result.interrupted
    after = load_checkpoint(run / "last.pt")["state_dict"]
    assert all(torch.equal(before[k], after[k]) for k in before)

"""Fine-tuning: --init-from copies what fits, --freeze-until freezes, --backbone-lr-mult."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from mictnet.cli import main
from mictnet.engine.batching import build_loaders
from mictnet.engine.finetune import frozen_modules
from mictnet.engine.presets import check_init_from, preset
from mictnet.engine.run import train_run
from mictnet.engine.schedule import build_scheduler
from mictnet.engine.train import Trainer, build_configured_model, build_optimizer
from mictnet.engine.train_config import ModelConfig, OptimConfig, ScheduleConfig
from mictnet.models import build_model
from tiny_clips import MovingSquares, tiny_config


@pytest.fixture(scope="module")
def source_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-epoch tiny run on 4 classes; its ``last.pt``."""
    run = tmp_path_factory.mktemp("source") / "run"
    cfg = tiny_config(schedule={"epochs": 1, "milestones": []})
    train = MovingSquares(16, 4, seed=0)
    Trainer(cfg, run, build_loaders(cfg, train, None), train.classes).fit()
    return run / "last.pt"


def test_init_from_copies_every_tensor_but_the_classifier(source_run: Path, caplog) -> None:
    source = torch.load(source_run, weights_only=True)["state_dict"]
    cfg = ModelConfig("tiny_video_net", init_from=str(source_run))
    with caplog.at_level(logging.INFO, logger="mictnet.train"):
        model = build_configured_model(cfg, num_classes=3)
    state = model.state_dict()
    for key, value in state.items():
        if key.startswith("fc."):
            assert value.shape != source[key].shape
        else:
            assert torch.equal(value, source[key]), key
    assert f"init from {source_run}: copied {len(state) - 2} tensors, fresh 2 (fc.weight, " \
           "fc.bias), skipped 0 with other shapes (none)" in caplog.text


def test_init_from_the_same_classes_still_starts_the_classifier_fresh(source_run: Path) -> None:
    source = torch.load(source_run, weights_only=True)["state_dict"]
    model = build_configured_model(ModelConfig("tiny_video_net", init_from=str(source_run)), 4)
    assert not torch.equal(model.state_dict()["fc.weight"], source["fc.weight"])


def test_init_from_another_architecture_is_an_error(source_run: Path) -> None:
    cfg = ModelConfig("resnet2d_18", init_from=str(source_run))
    with pytest.raises(ValueError, match="a tiny_video_net checkpoint cannot initialise "
                                         "resnet2d_18"):
        build_configured_model(cfg, num_classes=3)


def test_freeze_until_layer2_keeps_those_weights_and_trains_the_rest(tmp_path: Path) -> None:
    cfg = tiny_config(model={"name": "resnet3d_18", "freeze_until": "layer2"},
                      optim={"batch_size": 4, "lr": 0.1},
                      schedule={"epochs": 1, "milestones": []})
    train = MovingSquares(4, 4, seed=0)
    trainer = Trainer(cfg, tmp_path / "run", build_loaders(cfg, train, None), train.classes)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    after = trainer.model.state_dict()
    frozen = ("conv1.", "bn1.", "layer1.", "layer2.")
    for name, p in trainer.model.named_parameters():
        assert p.requires_grad == (not name.startswith(frozen)), name
    for key, value in after.items():
        if key.startswith(frozen):  # weights and the BatchNorms' running statistics
            assert torch.equal(value, before[key]), key
    for key in ("layer3.0.conv1.weight", "layer4.1.bn2.running_mean", "fc.weight"):
        assert not torch.equal(after[key], before[key]), key


@pytest.mark.parametrize("name", ["mict_resnet18", "resnet3d_18", "resnet2d_18"])
def test_freeze_until_stem_is_the_entrance(name: str) -> None:
    model = build_model(name, 5)
    stem = {id(m) for m in frozen_modules(model, "stem")}
    entrance = ["conv1", "bn1"] + (["mict3d"] if name.startswith("mict") else [])
    assert all(id(getattr(model, n)) in stem for n in entrance)
    assert id(model.layer1) not in stem and id(model.fc) not in stem


@pytest.mark.parametrize(("name", "until"), [("tiny_video_net", "layer1"),
                                             ("tiny_video_net", "stem"), ("mict_net", "stem")])
def test_freeze_until_on_a_model_without_resnet_stages_is_an_error(name: str, until: str) -> None:
    """Not a silent freeze of every module but the classifier."""
    with pytest.raises(ValueError, match="has no ResNet stages"):
        build_configured_model(ModelConfig(name, freeze_until=until), 4)


def test_backbone_lr_mult_lowers_all_but_the_classifier() -> None:
    model = build_model("tiny_video_net", 4)
    cfg = OptimConfig(lr=0.1, backbone_lr_mult=0.1, decay_norm_and_bias=False)
    opt = build_optimizer(model, cfg)
    fc = {id(p) for p in model.fc.parameters()}
    for group in opt.param_groups:
        head = {id(p) for p in group["params"]} <= fc
        assert group["lr"] == pytest.approx(0.1 if head else 0.01)
    assert sorted(g["weight_decay"] for g in opt.param_groups) == [0.0, 0.0, 5e-4, 5e-4]
    scheduler = build_scheduler(opt, ScheduleConfig(epochs=2, milestones=[1]), 1)
    opt.step()
    scheduler.step()  # past the milestone: every group ÷10
    assert sorted(g["lr"] for g in opt.param_groups) == pytest.approx([1e-3] * 2 + [1e-2] * 2)
    assert len(build_optimizer(model, OptimConfig()).param_groups) == 1  # mult 1: as before


def test_backbone_lr_mult_must_be_in_0_1() -> None:
    with pytest.raises(ValueError, match=r"backbone_lr_mult must be in \(0, 1\]"):
        OptimConfig(backbone_lr_mult=0.0)


def test_fine_tuning_presets_need_init_from(tmp_path: Path) -> None:
    for name in ("mict18-ucf101-from-k400", "r3d18-ucf101-from-k400"):
        cfg = preset(name)
        assert (cfg.optim.lr, cfg.optim.backbone_lr_mult) == (1e-3, 0.1)
        assert (cfg.schedule.epochs, cfg.schedule.milestones) == (30, [20])
        with pytest.raises(ValueError, match="--init-from RUN/best.pt"):
            check_init_from(cfg)
        with pytest.raises(ValueError, match="--init-from RUN/best.pt"):  # before any video
            train_run(cfg, tmp_path / "run")
        assert not (tmp_path / "run").exists()


def test_flags_in_train_help(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for flag in ("--init-from", "--freeze-until", "--backbone-lr-mult",
                 "mict18-ucf101-from-k400"):
        assert flag in text, flag

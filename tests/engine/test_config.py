"""Training configuration: presets, YAML round trip, overrides and clear errors."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from mictnet.engine.config_flags import add_config_flags, config_flags
from mictnet.engine.presets import list_presets, preset
from mictnet.engine.resolve import clip_spec, derived, resolve_config
from mictnet.engine.schedule import LRFactor
from mictnet.engine.train_config import (
    TrainConfig,
    config_from_dict,
    load_config,
    parse_assignment,
    save_config,
)


def test_published_presets() -> None:
    m18 = preset("mict18-ucf101")
    assert (m18.model.name, m18.model.pretrained, m18.model.dropout) == (
        "mict_resnet18", "imagenet", 0.5)
    assert (m18.optim.name, m18.optim.lr, m18.optim.momentum, m18.optim.weight_decay,
            m18.optim.batch_size) == ("sgd", 1e-2, 0.9, 5e-4, 112)
    assert (m18.data.frames, m18.data.crop_size) == (None, None)  # the model's clip
    assert clip_spec(m18).input_size == (16, 160, 160)
    assert (m18.schedule.epochs, m18.schedule.milestones, m18.schedule.gamma) == (120, [80], 0.1)
    r3d = preset("r3d18-ucf101")
    assert r3d.model.name == "resnet3d_18"
    assert (r3d.schedule.epochs, r3d.schedule.milestones) == (90, [40, 80])
    long18, long34 = preset("mict18-ucf101-long"), preset("mict34-ucf101-long")
    assert (long18.model.temporal_stride, long18.optim.batch_size, long18.model.dropout) == (
        4, 96, 0.6)
    assert (long34.model.name, long34.model.temporal_stride, long34.optim.batch_size,
            long34.model.dropout) == ("mict_resnet34", 4, 80, 0.7)
    assert {"mict18-ucf101", "r3d18-ucf101", "mict18-ucf101-long", "mict34-ucf101-long",
            "mict18-kinetics400", "r3d18-kinetics400", "mict18-ucf101-from-k400",
            "r3d18-ucf101-from-k400", "demo"} <= set(list_presets())
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        preset("nope")


@pytest.mark.parametrize(("name", "model"), [("mict18-kinetics400", "mict_resnet18"),
                                             ("r3d18-kinetics400", "resnet3d_18")])
def test_kinetics_presets(name: str, model: str) -> None:
    cfg = preset(name)
    assert (cfg.preset, cfg.model.name, cfg.model.pretrained, cfg.model.dropout) == (
        name, model, "imagenet", 0.2)
    assert (cfg.data.dataset, clip_spec(cfg).input_size, cfg.data.workers,
            cfg.data.strict) == ("kinetics", (16, 160, 160), 8, False)
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.momentum, cfg.optim.weight_decay,
            cfg.optim.batch_size) == ("sgd", 0.1, 0.9, 1e-4, 128)
    assert (cfg.schedule.epochs, cfg.schedule.kind, cfg.schedule.milestones,
            cfg.schedule.warmup_epochs, cfg.runtime.eval_every) == (45, "step", [20, 30, 40],
                                                                    10, 5)
    factor = LRFactor(cfg.schedule, steps_per_epoch=10)
    assert factor(0) == pytest.approx(0.01) and factor(50) == pytest.approx(0.505)
    assert factor(199) == 1.0 and factor(200) == pytest.approx(0.1)
    assert factor(299) == pytest.approx(0.1) and factor(449) == pytest.approx(1e-3)


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_round_trips_and_takes_flags(name: str, tmp_path: Path) -> None:
    cfg = preset(name)
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg
    resolved = resolve_config(_parse("--preset", name, "--root", "videos", "--strict"))
    assert resolved == derived(dataclasses.replace(cfg, data=dataclasses.replace(
        cfg.data, root=str(Path("videos").resolve()), strict=True)))


def test_yaml_round_trip(tmp_path: Path) -> None:
    cfg = preset("mict34-ucf101-long")
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg


def test_partial_yaml_over_a_preset(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 1e-3\n  batch_size: 32\ndata:\n  resize: [320, 240]\n")
    cfg = load_config(path, base=preset("mict18-ucf101"))
    assert (cfg.optim.lr, cfg.optim.batch_size, cfg.data.resize) == (1e-3, 32, (320, 240))
    assert cfg.optim.momentum == 0.9 and cfg.schedule.epochs == 120


@pytest.mark.parametrize(("text", "message"), [
    ("optim:\n  lrr: 0.1\n", r"c\.yaml: unknown key 'optim\.lrr'"),
    ("optim:\n  batch_size: many\n", r"c\.yaml: optim\.batch_size must be an integer"),
    ("optim:\n  lr: -1\n", r"c\.yaml: optim\.lr must be positive"),
    ("optim: [1, 2]\n", r"c\.yaml: optim must be a mapping"),
    ("schedule:\n  kind: linear\n", r"schedule\.kind must be one of 'step', 'cosine'"),
    ("data:\n  flip: sometimes\n", r"data\.flip"),
    ("optim:\n  lr: 0.1\n bad indent\n", r"c\.yaml line \d+: not valid YAML"),
    ("- just\n- a list\n", r"c\.yaml: expected a mapping"),
])
def test_bad_yaml_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_config(path)


def test_assignments_and_flip_lists() -> None:
    cfg = config_from_dict(parse_assignment("optim.lr=0.5"))
    assert cfg.optim.lr == 0.5
    cfg = config_from_dict(parse_assignment("data.flip=[MoveUp, Rise]"), cfg)
    assert cfg.data.flip == ["MoveUp", "Rise"] and cfg.optim.lr == 0.5
    cfg = config_from_dict(parse_assignment("model.pretrained="), preset("demo"))
    assert cfg.model.pretrained is None
    with pytest.raises(ValueError, match="SECTION.KEY=VALUE"):
        parse_assignment("optim.lr")


def test_checkpoint_config_is_plain_data() -> None:
    d = derived(preset("mict18-ucf101")).to_dict()
    assert d["data"]["resize"] == [256, 192]  # lists, not tuples
    assert config_from_dict(d) == derived(preset("mict18-ucf101"))
    assert TrainConfig().model.pretrained is None


@pytest.mark.parametrize("text", ["optim:\n  lr: .inf\n", "optim:\n  lr: .nan\n",
                                  "optim:\n  momentum: -.inf\n"])
def test_non_finite_numbers_are_rejected(tmp_path: Path, text: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"must be a finite number"):
        load_config(path)


def test_dataset_and_split_are_choices() -> None:
    with pytest.raises(ValueError, match=r"data\.dataset must be one of 'ucf101'"):
        config_from_dict({"data": {"dataset": "something-else"}})
    assert config_from_dict({"data": {"dataset": "kinetics"}}).data.dataset == "kinetics"
    with pytest.raises(ValueError, match=r"data\.split must be one of 1, 2, 3"):
        config_from_dict({"data": {"split": True}})


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    return parser.parse_args(argv)


def test_every_field_is_documented_and_a_flag() -> None:
    flags = config_flags()
    assert len(flags) == sum(len(dataclasses.fields(f.default_factory))
                             for f in dataclasses.fields(TrainConfig) if f.name != "preset")
    assert all(f.field.metadata["help"] for f in flags)
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    text = parser.format_help()
    for flag in flags:
        assert flag.option in text
    assert "--optim.nesterov" in text and "{auto,none,bf16,fp16}" in text


def test_flags_override_in_order(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 0.5\n  nesterov: false\n")
    args = _parse("--preset", "demo", "--config", str(path), "--set", "optim.lr=0.25",
                  "--lr", "0.125", "--optim.nesterov", "true", "--no-progress",
                  "--pretrained", "none", "--root", "videos", "--data.resize", "[64, 48]")
    cfg = resolve_config(args)
    assert (cfg.preset, cfg.optim.lr, cfg.optim.nesterov) == ("demo", 0.125, True)
    assert cfg.runtime.progress is False and cfg.model.pretrained is None
    assert cfg.data.root == str(Path("videos").resolve()) and cfg.data.resize == (64, 48)
    assert resolve_config(_parse()) == derived(TrainConfig())  # no flag given: nothing overridden
    with pytest.raises(ValueError, match=r"--lr: optim\.lr must be a finite number"):
        resolve_config(_parse("--lr", "inf"))


def test_list_root_flag_is_an_absolute_path_and_reaches_the_datasets(
        tmp_path: Path, make_video, monkeypatch) -> None:
    from mictnet.engine.build_data import test_dataset, train_dataset

    monkeypatch.chdir(tmp_path)
    videos = tmp_path / "videos"
    for name in ("a/one.avi", "b/two.avi"):
        make_video(videos / name, 4)
    listing = tmp_path / "lists" / "all.csv"
    listing.parent.mkdir()
    listing.write_text(f"{videos / 'a' / 'one.avi'},a\n{videos / 'b' / 'two.avi'},b\n")
    cfg = resolve_config(_parse("--dataset", "list", "--root", "lists/all.csv",
                                  "--test-root", "lists/all.csv", "--list-root", "videos"))
    assert cfg.data.list_root == str(videos)  # made absolute, as the other paths
    assert "--list-root DIR" in _help()
    samples = train_dataset(cfg.data).samples
    assert [Path(s[0]) for s in samples] == [videos / "a" / "one.avi", videos / "b" / "two.avi"]
    assert len(test_dataset(cfg.data)) == 2
    no_root = dataclasses.replace(cfg.data, list_root=None)
    with pytest.raises(ValueError, match="all.csv"):  # absolute paths outside the list's folder
        train_dataset(no_root)


def _help() -> str:
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    return parser.format_help()


def test_the_clip_comes_from_the_model_row_unless_set(caplog) -> None:
    """A Kinetics video ResNet trains on torchvision's clip (16×112² of 171×128); the config
    overrides it field by field, and the log says where each field came from."""
    with caplog.at_level("INFO", logger="mictnet"):
        cfg = resolve_config(_parse("--model", "r3d_18", "--frames", "8"))
    assert clip_spec(cfg).input_size == (8, 112, 112) and cfg.data.resize == (171, 128)
    assert "data.frames: --frames" in caplog.text and "data.crop_size: r3d_18 row" in caplog.text
    cfg = resolve_config(_parse("--preset", "demo-quick", "--model", "r3d_18"))
    assert clip_spec(cfg).input_size == (16, 32, 32)  # the preset's sizes win over the row
    assert clip_spec(resolve_config(_parse("--preset", "mict18-ucf101", "--model", "r3d_18"))
                     ).input_size == (16, 112, 112)  # the paper's preset leaves the clip


def test_an_assignment_that_is_not_yaml_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"'optim.lr=\[1,': the value is not valid YAML"):
        parse_assignment("optim.lr=[1,")
